// azure-openai-proxy: a FastCGI responder that serves the OpenAI API from Azure OpenAI.
#include <curl/curl.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "command_line.h"
#include "config.h"
#include "routing_credential.h"
#include "server.h"
#include "shared_state.h"
#include "text.h"
#include "token_fetch.h"
#include "unique_fd.h"

extern char** environ;

namespace {

#ifndef AOP_VERSION
#define AOP_VERSION "unknown"
#endif

const char* const kUsage =
    "usage: azure-openai-proxy [--listen ADDRESS] [--workers N] [--config FILE] [--check-config]\n"
    "       azure-openai-proxy --version | --help\n"
    "\n"
    "A FastCGI responder: it serves requests on the listening socket it is given on fd 0\n"
    "(spawn-fcgi, lighttpd bin-path, mod_fcgid) or by systemd socket activation, on\n"
    "--listen ADDRESS, or, started as plain\n"
    "CGI, the one request of that call. Settings come from the environment; see README.md.\n"
    "\n"
    "  --listen ADDRESS  listen for FastCGI on a unix socket path (/run/aoai.sock) or\n"
    "                    host:port (127.0.0.1:9000); same as AZURE_OPENAI_PROXY_FCGI_ADDRESS\n"
    "  --workers N       run N worker processes and start a new one when one dies;\n"
    "                    same as AZURE_OPENAI_PROXY_WORKERS\n"
    "  --config FILE     the routing table, failover and per-key limits (JSON); same as\n"
    "                    AZURE_OPENAI_PROXY_CONFIG\n"
    "  --check-config    print the settings and the resolved routing table and exit\n"
    "  --version         print the version and exit\n"
    "  -h, --help        print this and exit\n"
    "\n"
    "Every setting (AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_TOKEN, AZURE_OPENAI_PROXY_API_KEYS, ...)\n"
    "is described in azure-openai-proxy(8).\n";

void log_lines(const std::string& text) {
    for (const std::string& line : split(text, '\n'))
        if (!line.empty()) std::fprintf(stderr, "azure-openai-proxy: %s\n", line.c_str());
}

int fail(const std::string& message) {
    std::fprintf(stderr, "azure-openai-proxy: %s\n", message.c_str());
    return 2;
}

// The command line: settings that override the environment's, or an answer at once.
struct Arguments {
    std::string listen_address;
    std::string workers;
    std::string config_file;
    bool check_only = false;
    int exit_now = -1;  // 0 or more: help, version or a mistake, already printed
};

Arguments parse_arguments(int argc, char** argv) {
    CommandLine line = read_command_line(argc, argv, {"--listen", "--workers", "--config"}, {"--check-config"});
    Arguments args{line.values["--listen"], line.values["--workers"], line.values["--config"],
                   line.switches.count("--check-config") > 0, -1};
    if (line.help) {
        std::fputs(kUsage, stdout);
        args.exit_now = 0;
    } else if (line.version) {
        std::printf("azure-openai-proxy %s (%s)\n", AOP_VERSION, curl_version());
        args.exit_now = 0;
    } else if (!line.unknown.empty()) {
        std::fputs(kUsage, stderr);
        args.exit_now = fail("unknown argument '" + line.unknown + "'");
    }
    return args;
}

// Each Entra ID credential of the configuration (the environment's endpoint's and the
// routing file's endpoints') tried once, before any worker or thread: a wrong secret stops
// the start with one line naming the endpoint; each token obtained is left in the state
// file for the workers (kept: no worker has joined it yet).
// SIGTERM or SIGINT meanwhile ends the check (a token request under way is aborted) and
// the program, with status 0.
std::atomic<bool> stop_during_check{false};

// -1: go on serving; else the exit status.
int credential_ready_at_start(const Config& config) {
    std::vector<HostCredential> credentials = host_credentials(config);
    if (credentials.empty()) return -1;
    struct sigaction on_stop {}, old_term {}, old_int {};
    on_stop.sa_handler = [](int) { stop_during_check = true; };
    sigemptyset(&on_stop.sa_mask);
    bool caught = sigaction(SIGTERM, &on_stop, &old_term) == 0 && sigaction(SIGINT, &on_stop, &old_int) == 0;
    std::unique_ptr<SharedState> state = open_shared_state(config, true);
    bool ready = true;
    for (size_t i = 0; i < credentials.size() && ready && !stop_during_check; ++i) {
        std::string line;
        ready = check_credential_at_start(credentials[i], config, state ? state.get() : nullptr, stop_during_check,
                                          line);
        if (!line.empty()) log_lines(line);
    }
    if (caught) {
        sigaction(SIGTERM, &old_term, nullptr);
        sigaction(SIGINT, &old_int, nullptr);
    }
    if (stop_during_check) log_lines("stopped while trying the Entra ID credential");
    return stop_during_check ? 0 : ready ? -1 : 1;
}

// A FastCGI listening socket: the one given (systemd, fd 0) or one opened on the address.
int serve_listening_socket(const Config& config, int activated) {
    int listen_fd = activated >= 0 ? activated : STDIN_FILENO;  // handed over: not ours to close
    UniqueFd opened;  // one opened here is held until the serving ends (workers _exit, never close it)
    if (!config.fcgi_address.empty()) {
        std::string error;
        opened = open_listen_socket(config.fcgi_address, config.fcgi_socket_owner, error);
        if (!opened.valid()) return fail(error);
        listen_fd = opened.get();
    }
    log_lines(describe_config(config));
    // Once per start, before any worker: never once per request or per worker.
    std::string warning = open_relay_warning(config);
    if (!warning.empty()) log_lines(warning);
    int status = credential_ready_at_start(config);
    if (status < 0) status = config.workers > 1 ? run_supervised(config, listen_fd) : run_fastcgi(config, listen_fd);
    if ((starts_with(config.fcgi_address, "/") || starts_with(config.fcgi_address, "./")) &&
        unlink(config.fcgi_address.c_str()) != 0 && errno != ENOENT)
        fail("cannot remove " + config.fcgi_address + ": " + std::strerror(errno));
    if (status < 0) _exit(0);  // threads still busy: leave without destructors
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    // Large buffers (a big request body) come from mmap and go back to the system when
    // freed; glibc's default raises that threshold after the first one, and memory freed
    // by a burst of large requests would then stay with the process. Advice only: glibc
    // takes it, the sanitizer build's allocator refuses it, and either way the proxy works.
    (void)mallopt(M_MMAP_THRESHOLD, 1 << 20);
    Arguments args = parse_arguments(argc, argv);
    if (args.exit_now >= 0) return args.exit_now;

    Environment env = environment_of(environ);
    if (!args.workers.empty()) env["AZURE_OPENAI_PROXY_WORKERS"] = args.workers;
    if (!args.config_file.empty()) env["AZURE_OPENAI_PROXY_CONFIG"] = args.config_file;
    ConfigResult parsed = parse_config(env);
    if (!parsed.ok) {
        log_lines(parsed.error);  // one line per mistake
        return 2;
    }
    Config config = parsed.config;
    if (!args.listen_address.empty()) config.fcgi_address = args.listen_address;
    if (args.check_only) {
        std::fputs(describe_config(config).c_str(), stdout);
        return 0;
    }

    int activated = socket_activated_fd();
    bool fastcgi = !config.fcgi_address.empty() || activated >= 0 || is_listening_socket(STDIN_FILENO);
    if (!fastcgi && !std::getenv("GATEWAY_INTERFACE"))
        return fail(
            "no FastCGI socket on fd 0 and no CGI request: pass --listen /path/to.sock or "
            "--listen 127.0.0.1:9000 (or set AZURE_OPENAI_PROXY_FCGI_ADDRESS), or start it "
            "from spawn-fcgi or the web server");
    // Once, before any thread or worker process: every libcurl handle of every worker
    // relies on it (a failure here would otherwise show as every request failing).
    CURLcode curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (curl_ready != CURLE_OK) {
        fail(std::string("libcurl cannot start (curl_global_init): ") + curl_easy_strerror(curl_ready));
        return 1;
    }
    int status = fastcgi ? serve_listening_socket(config, activated) : run_cgi(config);
    curl_global_cleanup();
    return status;
}
