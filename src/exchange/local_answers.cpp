// The proxy's own answers (local_answers.h).
#include "local_answers.h"

#include "metrics.h"
#include "proxy_errors.h"
#include "shared_state.h"
#include "text.h"

namespace {

// GET /metrics: for an admin key, or for a client on this host.
void answer_metrics(const Request& request, const Config& config, SharedState& state, ResponseWriter& writer) {
    const std::string& from = request.remote_address;
    bool loopback = from == "127.0.0.1" || from == "::1" || starts_with(from, "127.") || from == "::ffff:127.0.0.1";
    std::string_view presented = presented_key(request.headers);
    bool admin = !config.admin_keys.empty() && find_client_key(config.admin_keys, presented);
    if (!loopback && !admin) {
        writer.error(errors::metrics_forbidden());
        return;
    }
    writer.complete(200, "text/plain; version=0.0.4; charset=utf-8",
                    render_metrics(state.series(), state.targets(), wall_clock_ms()));
}

// GET /v1/models and /v1/models/{id} from the configured list (the live list goes upstream).
void answer_models(const Route& route, const Config& config, ResponseWriter& writer) {
    if (route.kind == RouteKind::ListModels)
        writer.complete(200, "application/json", models_list_json(config));
    else if (is_listed_model(config, route.model_id))
        writer.complete(200, "application/json", model_json(route.model_id));
    else
        writer.error(errors::model_not_found(route.model_id));
}

}  // namespace

bool answer_locally(const Route& route, const Request& request, const Config& config, SharedState& state,
                    ResponseWriter& writer) {
    switch (route.kind) {
        case RouteKind::Preflight: writer.head(204, preflight_headers(request)); return true;
        case RouteKind::InvalidPath: writer.error(errors::invalid_path(request)); return true;
        case RouteKind::NotFound: writer.error(errors::unknown_route(request)); return true;
        case RouteKind::MethodNotAllowed:
            writer.error(errors::method_not_allowed(request.method), {{"Allow", kApiMethods}});
            return true;
        case RouteKind::Realtime: writer.error(errors::realtime_not_supported()); return true;
        case RouteKind::Health: writer.complete(200, "application/json", "{\"status\":\"ok\"}"); return true;
        case RouteKind::Metrics: answer_metrics(request, config, state, writer); return true;
        case RouteKind::ListModels:
        case RouteKind::RetrieveModel:
            if (config.live_models) return false;
            answer_models(route, config, writer);
            return true;
        case RouteKind::Deployment:
        case RouteKind::Upstream: return false;
    }
    return false;
}
