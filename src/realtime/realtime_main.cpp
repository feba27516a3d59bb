// azure-openai-proxy-realtime: the WebSocket companion of the FastCGI program (issue 25).
// A web server spawns the FastCGI program and cannot hand it an upgraded connection; this
// long-lived program owns a listening socket that lighttpd, nginx and Apache proxy realtime
// sessions to, with the FastCGI program's settings. One thread, one Asio event loop.
// Tested in tests/integration/realtime-socket.test.mjs and realtime-hostile.test.mjs.
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "command_line.h"
#include "descriptor_limit.h"
#include "listen_socket.h"
#include "process_environment.h"
#include "routing.h"
#include "session_opening.h"
#include "text.h"
#include "token_fetch.h"
#include "token_keeper.h"

extern char** environ;

namespace {

#ifndef AOP_VERSION
#define AOP_VERSION "unknown"
#endif

namespace asio = boost::asio;
// generic::stream_protocol names no acceptor type: one for a unix or a TCP listening socket.
using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;

const char* const kUsage =
    "usage: azure-openai-proxy-realtime [--listen ADDRESS] [--check-config]\n"
    "       azure-openai-proxy-realtime --version | --help\n"
    "\n"
    "Relays realtime WebSocket sessions (/v1/realtime?model=...) that the web server proxies\n"
    "to it, to Azure OpenAI's /openai/v1/realtime, with the settings of azure-openai-proxy\n"
    "(the same environment). See README.md, \"Realtime (WebSocket)\".\n"
    "\n"
    "  --listen ADDRESS  a unix socket path (/run/azure-openai-proxy/realtime.sock) or\n"
    "                    host:port (127.0.0.1:8091); same as AZURE_OPENAI_PROXY_REALTIME_ADDRESS;\n"
    "                    neither: the socket systemd hands over\n"
    "  --check-config    print the settings and exit\n"
    "  --version         print the version and exit\n"
    "  -h, --help        print this and exit\n";

int fail(const std::string& message) {
    std::fprintf(stderr, "azure-openai-proxy-realtime: %s\n", message.c_str());
    return 2;
}

struct Arguments {
    std::string listen;
    bool check_only = false;
    int exit_now = -1;  // 0 or more: help, version or a mistake, already printed
};

Arguments parse_arguments(int argc, char** argv) {
    CommandLine line = read_command_line(argc, argv, {"--listen"}, {"--check-config"});
    Arguments args{line.values["--listen"], line.switches.count("--check-config") > 0, -1};
    if (line.help || line.version) {
        std::fputs(line.help ? kUsage : "azure-openai-proxy-realtime " AOP_VERSION "\n", stdout);
        args.exit_now = 0;
    } else if (!line.unknown.empty()) {
        std::fputs(kUsage, stderr);
        args.exit_now = fail("unknown argument '" + line.unknown + "'");
    }
    return args;
}

// The settings, or the line that says why not.
bool read_settings(const Arguments& args, Config& config, RealtimeSettings& settings, std::string& error) {
    Environment env = environment_of(environ);
    ConfigResult parsed = parse_config(env);
    if (!parsed.ok) {
        error = parsed.error;
        return false;
    }
    config = parsed.config;
    return parse_realtime_settings(env, args.listen, settings, error);
}

// Each Entra ID identity of the configuration (the environment's endpoint's, the routing
// file's endpoints') tried once before serving, as the FastCGI program does: a wrong secret
// stops the start with one line; a token obtained (or the FastCGI workers' own, from the
// shared state) is then kept renewed by the process's keepers. Unreachable: a warning, and
// the first sessions wait for the token.
bool credentials_ready(const Config& config, SharedState& state) {
    static const std::atomic<bool> stopping{false};  // SIGTERM meanwhile ends the process as it stands
    std::vector<HostCredential> credentials = host_credentials(config);
    if (!credentials.empty() && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        std::fputs("azure-openai-proxy-realtime: libcurl cannot start (curl_global_init)\n", stderr);
        return false;
    }
    for (const HostCredential& credential : credentials) {
        std::string line;
        bool ready = check_credential_at_start(credential, config, &state, stopping, line);
        if (!line.empty()) std::fprintf(stderr, "azure-openai-proxy-realtime: %s\n", line.c_str());
        if (!ready) return false;
    }
    for (const HostCredential& credential : credentials) token_keeper_for(credential.settings, config, &state);
    return true;
}

// TLS to Azure: the CA bundle (or the system's), the peer always verified, TLS 1.2 at least.
bool prepare_tls(asio::ssl::context& tls, const Config& config, std::string& error) {
    tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    // OpenSSL's read and write buffers (about 34 KiB a connection) are given back whenever
    // they are empty: most of an idle session's memory otherwise.
    SSL_CTX_set_mode(tls.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    boost::system::error_code ec;
    if (config.ca_bundle.empty())
        tls.set_default_verify_paths(ec);
    else
        tls.load_verify_file(config.ca_bundle, ec);
    if (ec) error = "the CA certificates (" + (config.ca_bundle.empty() ? "the system's" : config.ca_bundle) + "): " + ec.message();
    return !ec;
}

// The listening socket (opened here, or systemd's) as an acceptor for a unix or TCP socket.
bool open_acceptor(const RealtimeSettings& settings, Acceptor& acceptor, std::string& error) {
    int fd = -1;
    UniqueFd opened;
    if (!settings.listen.empty()) {
        opened = open_listen_socket(settings.listen, settings.socket_owner, error);
        if (!opened.valid()) return false;
        fd = opened.release();
    } else if ((fd = socket_activated_fd()) < 0) {
        error = "no address to listen on: pass --listen /path/to.sock or --listen 127.0.0.1:8091 (or set "
                "AZURE_OPENAI_PROXY_REALTIME_ADDRESS), or start it from a systemd socket unit";
        return false;
    }
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        error = std::string("the listening socket: ") + std::strerror(errno);
        close(fd);
        return false;
    }
    int family = address.ss_family;
    boost::system::error_code ec;
    acceptor.assign(asio::generic::stream_protocol(family, family == AF_UNIX ? 0 : IPPROTO_TCP), fd, ec);
    if (ec) {
        error = "the listening socket: " + ec.message();
        close(fd);
        return false;
    }
    return true;
}

// A TCP client's frames go out as they come: without TCP_NODELAY, Nagle holds a small write
// until the previous one is acknowledged, and a delayed ACK makes that 40 ms. A unix
// socket has no such option (EOPNOTSUPP), nor the delay.
void send_at_once(ClientConnection::Socket& socket) {
    int on = 1;
    if (setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0 && errno != EOPNOTSUPP)
        std::fprintf(stderr, "azure-openai-proxy-realtime: TCP_NODELAY: %s\n", std::strerror(errno));
}

void accept_next(RealtimeProcess& process, Acceptor& acceptor, asio::steady_timer& pause) {
    acceptor.async_accept([&process, &acceptor, &pause](boost::system::error_code ec, ClientConnection::Socket socket) {
        if (ec == asio::error::operation_aborted) return;  // stopping
        if (!ec) {
            send_at_once(socket);
            open_session(process, std::move(socket));
            return accept_next(process, acceptor, pause);
        }
        // Out of descriptors or memory: try again a little later rather than spin.
        std::fprintf(stderr, "azure-openai-proxy-realtime: accept: %s\n", ec.message().c_str());
        pause.expires_after(std::chrono::milliseconds(100));
        pause.async_wait([&process, &acceptor, &pause](boost::system::error_code ec) {
            if (!ec) accept_next(process, acceptor, pause);  // else stopping
        });
    });
}

using Clock = std::chrono::steady_clock;

// After SIGTERM: the event loop ends when the last session has closed, or at `deadline`
// with those left cut (their log lines say so).
void wait_for_drain(RealtimeProcess& process, asio::steady_timer& drain, Clock::time_point deadline) {
    const OpenSessions& sessions = *process.sessions;
    if (sessions.slots.empty() || Clock::now() >= deadline) {
        if (!sessions.slots.empty())
            std::fprintf(stderr, "azure-openai-proxy-realtime: %zu sessions still open at the drain deadline: cut\n",
                         sessions.slots.size());
        process.io.stop();
        return;
    }
    drain.expires_after(std::chrono::milliseconds(50));
    drain.async_wait([&process, &drain, deadline](boost::system::error_code ec) {
        if (!ec) wait_for_drain(process, drain, deadline);
    });
}

// SIGHUP: the routing file read again, as the FastCGI program does. A session admitted from
// here on uses the new table (keys, limits, models, targets); one admitted before keeps the
// table it started with to its end. A file that does not read keeps the table in force.
void reload_on_hangup(RealtimeProcess& process, asio::signal_set& hangup) {
    hangup.async_wait([&process, &hangup](boost::system::error_code ec, int) {
        if (ec) return;  // stopping
        std::string said = reload_routing(process.config, process_environment, nullptr);
        std::replace(said.begin(), said.end(), '\n', ' ');  // one line, the file's mistakes in it
        std::fprintf(stderr, "azure-openai-proxy-realtime: %s\n", said.c_str());
        reload_on_hangup(process, hangup);
    });
}

// Accepts and relays until SIGTERM or SIGINT: then no new session, 1001 to both sides of
// the open ones, and the end once they have closed (or at the drain deadline); SIGHUP
// reads the routing file again. The acceptor, timers and signals go before the caller's
// io_context.
bool serve(RealtimeProcess& process, std::string& error) {
    asio::io_context& io = process.io;
    Acceptor acceptor(io);
    if (!open_acceptor(process.settings, acceptor, error)) return false;
    std::fprintf(stderr, "azure-openai-proxy-realtime: %s\n", describe_realtime_settings(process.settings).c_str());
    asio::steady_timer pause(io), drain(io);
    accept_next(process, acceptor, pause);
    asio::signal_set stop(io, SIGTERM, SIGINT), hangup(io, SIGHUP);
    reload_on_hangup(process, hangup);
    stop.async_wait([&](boost::system::error_code ec, int) {
        if (ec) return;
        boost::system::error_code ignored;
        acceptor.close(ignored);
        hangup.cancel(ignored);
        pause.cancel();
        stop_sessions(process);
        wait_for_drain(process, drain, Clock::now() + std::chrono::seconds(process.settings.drain_timeout_s));
    });
    io.run();
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    Arguments args = parse_arguments(argc, argv);
    if (args.exit_now >= 0) return args.exit_now;
    Config config;
    RealtimeSettings settings;
    std::string error;
    if (!read_settings(args, config, settings, error)) return fail(error);
    std::unique_ptr<SharedState> state = open_shared_state(config);
    if (!state) return 1;
    // Each session holds the client's connection and Azure's.
    settings.max_sessions =
        items_within_descriptors(settings.max_sessions, 2, "realtime sessions", "AZURE_OPENAI_PROXY_REALTIME_MAX_SESSIONS");
    if (args.check_only) {
        std::fputs((describe_config(config) + describe_realtime_settings(settings) + "\n").c_str(), stdout);
        return 0;
    }
    if (!credentials_ready(config, *state)) return 1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);  // until the event loop takes it (serve): never the end of the process
    // Held by pointer so that it can go before `process`: the handlers still pending when
    // the loop ends (sessions cut at the drain deadline) are destroyed with it, and their
    // destructors report to the process's shared state.
    auto io = std::make_unique<asio::io_context>(1);
    asio::ssl::context tls(asio::ssl::context::tls_client);
    if (!prepare_tls(tls, config, error)) return fail(error);
    RealtimeProcess process{*io, tls, config, settings, std::make_shared<OpenSessions>(), std::move(state)};
    if (!serve(process, error)) return fail(error);
    io.reset();
    stop_token_keepers();  // before the state they share goes
    if ((starts_with(settings.listen, "/") || starts_with(settings.listen, "./")) &&
        unlink(settings.listen.c_str()) != 0 && errno != ENOENT)
        return fail("cannot remove " + settings.listen + ": " + std::strerror(errno));
    return 0;
}
