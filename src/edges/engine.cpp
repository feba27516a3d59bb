// The FastCGI engine, the process's part (see engine.h for why this shape): the number of
// loops and of requests the descriptor limit allows, the loops started on their threads
// and run until stopped, and SIGHUP's reading of the routing file. The loop is in
// fastcgi_loop.cpp, a request's session in fastcgi_session_*.cpp, the access log's buffer
// in log_buffer.cpp.
// Tests: the whole process through real web servers (tests/integration/*.test.mjs).
#include "engine.h"


#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "descriptor_limit.h"
#include "fastcgi.h"
#include "fastcgi_loop.h"
#include "process_environment.h"
#include "redis_sync.h"
#include "routing.h"
#include "routing_credential.h"
#include "shared_state.h"
#include "text.h"
#include "token_keeper.h"

namespace {

using engine_detail::Loop;
using engine_detail::Process;

// ---- the process -----------------------------------------------------------------------------

int loop_count(const Config& config) {
    if (config.threads > 0) return config.threads;
    unsigned cores = std::thread::hardware_concurrency();
    return cores == 0 ? 1 : static_cast<int>(cores);
}

// Runs every loop, the first on this thread, until all have stopped; false when one
// stopped with requests still busy.
bool run_loops(std::vector<std::unique_ptr<Loop>>& loops) {
    std::vector<std::thread> threads;
    std::vector<char> clean(loops.size(), 1);
    try {
        for (size_t i = 1; i < loops.size(); ++i)
            threads.emplace_back([&loops, &clean, i] { clean[i] = loops[i]->run(); });
    } catch (const std::system_error& failure) {
        std::fprintf(stderr, "azure-openai-proxy: could only start %zu of %zu loops: %s\n",
                     threads.size() + 1, loops.size(), failure.what());
        for (size_t i = threads.size() + 1; i < loops.size(); ++i) loops[i]->begin_stop();
    }
    clean[0] = loops[0]->run();
    for (std::thread& thread : threads) thread.join();
    return std::find(clean.begin(), clean.end(), 0) == clean.end();
}

}  // namespace

bool reload_routing_file(const Config& config) {
    std::string said = reload_routing(config, process_environment, nullptr);
    for (const std::string& line : split(said, '\n')) std::fprintf(stderr, "azure-openai-proxy: %s\n", line.c_str());
    return said.find(" in force: ") != std::string::npos;
}

int serve_fastcgi(const Config& config, int listen_fd, int stop_fd, int reload_fd) {
    std::string error;
    if (!fastcgi_prepare_listener(listen_fd, error)) {
        std::fprintf(stderr, "azure-openai-proxy: %s\n", error.c_str());
        return 1;
    }
    auto caches = std::make_unique<SharedCaches>();
    std::unique_ptr<SharedState> state = open_shared_state(config);
    if (!state) return 1;
    std::unique_ptr<RedisSync> redis;
    if (!config.redis.host.empty() || !config.redis.unix_path.empty())
        redis = std::make_unique<RedisSync>(config, *state);
    // Each request holds the web server's connection and, while it is sent, the upstream's.
    long max_requests =
        items_within_descriptors(config.max_requests, 2, "requests in flight", "AZURE_OPENAI_PROXY_MAX_REQUESTS");
    auto process = std::make_unique<Process>(config, listen_fd, stop_fd, reload_fd, max_requests, caches->get(), *state);
    int count = loop_count(config);
    std::vector<std::unique_ptr<Loop>> loops;
    for (int i = 0; i < count; ++i) {
        loops.push_back(std::make_unique<Loop>(*process));
        if (!loops.back()->start(error, i == 0)) {
            std::fprintf(stderr, "azure-openai-proxy: %s\n", error.c_str());
            return 1;
        }
    }
    std::fprintf(stderr, "azure-openai-proxy: serving with %d event loops, at most %ld requests in flight\n",
                 count, process->max_requests);
    // Every endpoint's Entra ID token is kept from now on (the start left it in the state
    // file), so a request waits for Entra only when the start could not get it.
    for (const HostCredential& credential : host_credentials(config))
        token_keeper_for(credential.settings, config, state.get());
    if (!run_loops(loops)) {
        std::fprintf(stderr, "azure-openai-proxy: stopped with requests still busy\n");
        // Reader threads may still use what the loops own: leave it all to the exit.
        for (auto& loop : loops) loop.release();
        process.release();
        caches.release();
        redis.release();
        state.release();  // and the token keepers with it, still running
        return -1;
    }
    stop_token_keepers();  // before the state they share goes
    std::fprintf(stderr, "azure-openai-proxy: stopped\n");
    return 0;
}
