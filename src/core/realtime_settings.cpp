// The WebSocket companion's settings (realtime_settings.h).
#include "realtime_settings.h"

#include "config_reading.h"
#include "realtime_route.h"

bool parse_realtime_settings(const Environment& env, const std::string& listen_argument, RealtimeSettings& settings,
                             std::string& error) {
    settings.listen = listen_argument.empty() ? trim(environment_value(env, "AZURE_OPENAI_PROXY_REALTIME_ADDRESS"))
                                              : listen_argument;
    settings.socket_owner = trim(environment_value(env, "AZURE_OPENAI_PROXY_REALTIME_SOCKET_OWNER"));
    settings.preview_api_version = trim(environment_value(env, "AZURE_OPENAI_PROXY_REALTIME_PREVIEW_API_VERSION"));
    if (!settings.preview_api_version.empty() && !valid_realtime_api_version(settings.preview_api_version)) {
        error = "AZURE_OPENAI_PROXY_REALTIME_PREVIEW_API_VERSION: not an api-version such as 2024-10-01-preview";
        return false;
    }
    return read_number(env, "AZURE_OPENAI_PROXY_REALTIME_HANDSHAKE_TIMEOUT", 600, settings.handshake_timeout_s, error) &&
           read_number(env, "AZURE_OPENAI_PROXY_REALTIME_IDLE_TIMEOUT", 86400, settings.idle_timeout_s, error) &&
           read_number(env, "AZURE_OPENAI_PROXY_REALTIME_MAX_MESSAGE_BYTES", 1LL << 30, settings.max_message_bytes,
                       error) &&
           read_number(env, "AZURE_OPENAI_PROXY_REALTIME_QUEUE_BYTES", 1LL << 30, settings.queue_bytes, error) &&
           read_number(env, "AZURE_OPENAI_PROXY_REALTIME_MAX_SESSIONS", 1000000, settings.max_sessions, error) &&
           read_number(env, "AZURE_OPENAI_PROXY_REALTIME_DRAIN_TIMEOUT", 3600, settings.drain_timeout_s, error) &&
           read_number(env, "AZURE_OPENAI_PROXY_REALTIME_SESSIONS_PER_KEY", 1000000, settings.sessions_per_key, error);
}

std::string describe_realtime_settings(const RealtimeSettings& s) {
    return "realtime: listening on " + (s.listen.empty() ? std::string("the socket systemd hands over") : s.listen) +
           "; at most " + std::to_string(s.max_sessions) + " sessions" +
           (s.sessions_per_key ? " (" + std::to_string(s.sessions_per_key) + " a key)" : std::string()) + ", messages of " +
           std::to_string(s.max_message_bytes) + " bytes, " + std::to_string(s.queue_bytes) +
           " bytes queued a direction; timeouts (s): handshake " + std::to_string(s.handshake_timeout_s) + ", idle " +
           std::to_string(s.idle_timeout_s) + ", drain " + std::to_string(s.drain_timeout_s) + "; route " +
           (s.preview_api_version.empty() ? std::string("GA (/openai/v1/realtime)")
                                          : "preview (/openai/realtime, api-version " + s.preview_api_version + ")");
}
