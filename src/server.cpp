// Process edges: the FastCGI accept loop (libfcgi), plain CGI, listening sockets, signals.
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include "engine.h"
#include "text.h"

namespace {

using Clock = std::chrono::steady_clock;

// Written once by a stop signal and never drained: every poll on its read end wakes.
int g_stop_pipe[2] = {-1, -1};
// Written by SIGHUP (read the configuration file again); drained by its reader.
int g_reload_pipe[2] = {-1, -1};

void on_signal(int signal_number) {
    int saved = errno;
    char byte = 's';
    ssize_t ignored = ::write(signal_number == SIGHUP ? g_reload_pipe[1] : g_stop_pipe[1], &byte, 1);
    (void)ignored;
    errno = saved;
}

// Installed before FCGX_Init: libfcgi then keeps its own handlers off these signals
// (its SIGTERM handler only sets a flag that threads blocked in accept never see).
bool install_signals() {
    if (pipe2(g_stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0 || pipe2(g_reload_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return false;
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    for (int signal_number : {SIGTERM, SIGINT, SIGHUP, SIGUSR1})
        sigaction(signal_number, &action, nullptr);
    signal(SIGPIPE, SIG_IGN);
    return true;
}

void close_signal_pipes() {
    for (int* pipe : {g_stop_pipe, g_reload_pipe}) {
        close(pipe[0]);
        close(pipe[1]);
    }
}

// The supervisor reads the file too, so a worker it starts later has the new table, and
// passes the signal on only when the file was good.
void reload_supervised(const Config& config, const std::map<pid_t, Clock::time_point>& workers) {
    char drained[64];
    while (::read(g_reload_pipe[0], drained, sizeof drained) > 0) {
    }
    if (!reload_routing_file(config)) return;
    for (const auto& worker : workers) kill(worker.first, SIGHUP);
}

bool stop_requested() {
    pollfd stop = {g_stop_pipe[0], POLLIN, 0};
    return poll(&stop, 1, 0) > 0;
}

// chown to "user[:group]"; the group defaults to the user's own.
bool give_socket_to(const std::string& path, const std::string& owner, std::string& error) {
    size_t colon = owner.find(':');
    std::string user = owner.substr(0, colon);
    const passwd* account = getpwnam(user.c_str());
    if (!account) {
        error = "AZURE_OPENAI_PROXY_FCGI_SOCKET_OWNER: no user '" + user + "'";
        return false;
    }
    gid_t group = account->pw_gid;
    if (colon != std::string::npos) {
        std::string group_name = owner.substr(colon + 1);
        const struct group* found = getgrnam(group_name.c_str());
        if (!found) {
            error = "AZURE_OPENAI_PROXY_FCGI_SOCKET_OWNER: no group '" + group_name + "'";
            return false;
        }
        group = found->gr_gid;
    }
    if (chown(path.c_str(), account->pw_uid, group) != 0) {
        error = "cannot give " + path + " to " + owner + ": " + std::strerror(errno);
        return false;
    }
    return true;
}

int open_unix_socket(const std::string& path, const std::string& owner, std::string& error) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) {
        error = "unix socket path is too long: " + path;
        return -1;
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct stat existing;
    if (fd >= 0 && ::stat(path.c_str(), &existing) == 0 && S_ISSOCK(existing.st_mode)) {
        // A socket left by an earlier run is replaced; one a live server answers on is not.
        if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
            error = "another server is listening on " + path;
            close(fd);
            return -1;
        }
        ::unlink(path.c_str());
    }
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        error = "cannot bind unix socket " + path + ": " + std::strerror(errno);
        if (fd >= 0) close(fd);
        return -1;
    }
    chmod(path.c_str(), 0660);  // only the web server's group may talk FastCGI to us
    if (!owner.empty() && !give_socket_to(path, owner, error)) {
        close(fd);
        return -1;
    }
    return fd;
}

int open_tcp_socket(const std::string& address, std::string& error) {
    std::string host, port_text;
    size_t colon = address.rfind(':');
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    int status = getaddrinfo(host.empty() ? nullptr : host.c_str(), port_text.c_str(), &hints, &found);
    if (status != 0) {
        error = "cannot resolve " + address + ": " + gai_strerror(status);
        return -1;
    }
    int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (fd < 0 || bind(fd, found->ai_addr, found->ai_addrlen) != 0) {
        error = "cannot bind " + address + ": " + std::strerror(errno);
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    return fd;
}


// A worker: a forked process that serves FastCGI on the shared listening socket.
pid_t start_worker_process(const Config& config, int listen_fd) {
    pid_t supervisor = getpid();
    // Signals wait until the child has its own handlers: the supervisor's would write
    // to the supervisor's stop pipe.
    sigset_t all, previous;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &previous);
    pid_t pid = fork();
    if (pid != 0) {
        sigprocmask(SIG_SETMASK, &previous, nullptr);
        return pid;
    }
    for (int signal_number : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) signal(signal_number, SIG_DFL);
    close_signal_pipes();
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    // Never outlive the supervisor, even when it is killed outright.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != supervisor) _exit(0);
    int status = run_fastcgi(config, listen_fd);
    _exit(status < 0 ? 0 : status);
}

void stop_workers(std::map<pid_t, Clock::time_point>& workers) {
    for (const auto& worker : workers) kill(worker.first, SIGTERM);
    // Workers stop within 1.5 s; whatever is left after 1.8 s is killed.
    auto deadline = Clock::now() + std::chrono::milliseconds(1800);
    while (!workers.empty() && Clock::now() < deadline) {
        pid_t pid = waitpid(-1, nullptr, WNOHANG);
        if (pid > 0)
            workers.erase(pid);
        else
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (const auto& worker : workers) kill(worker.first, SIGKILL);
    while (!workers.empty() && waitpid(-1, nullptr, 0) > 0) workers.erase(workers.begin());
}

}  // namespace

int run_supervised(const Config& config, int listen_fd) {
    if (!install_signals()) return 1;
    std::map<pid_t, Clock::time_point> workers;  // pid -> start time
    for (int i = 0; i < config.workers; ++i) workers[start_worker_process(config, listen_fd)] = Clock::now();
    std::fprintf(stderr, "azure-openai-proxy: supervising %d workers\n", config.workers);

    while (!stop_requested()) {
        pollfd stop = {g_stop_pipe[0], POLLIN, 0};
        pollfd waits[2] = {stop, {g_reload_pipe[0], POLLIN, 0}};
        poll(waits, 2, 200);
        if (waits[1].revents & POLLIN) reload_supervised(config, workers);
        int status = 0;
        pid_t pid;
        while (!stop_requested() && (pid = waitpid(-1, &status, WNOHANG)) > 0) {
            auto it = workers.find(pid);
            if (it == workers.end()) continue;
            bool crashed_at_once = Clock::now() - it->second < std::chrono::seconds(1);
            workers.erase(it);
            std::fprintf(stderr, "azure-openai-proxy: worker %d %s %d; starting another\n", pid,
                         WIFSIGNALED(status) ? "killed by signal" : "exited with",
                         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            // A worker that dies at once will die again: do not spin.
            if (crashed_at_once) poll(&stop, 1, 1000);
            if (!stop_requested()) workers[start_worker_process(config, listen_fd)] = Clock::now();
        }
    }
    stop_workers(workers);
    std::fprintf(stderr, "azure-openai-proxy: stopped\n");
    return 0;
}

int open_listen_socket(const std::string& address, const std::string& owner, std::string& error) {
    int fd;
    if (starts_with(address, "/") || starts_with(address, "./")) {
        fd = open_unix_socket(address, owner, error);
    } else if (address.find(':') != std::string::npos) {
        fd = open_tcp_socket(address, error);
    } else {
        error = "'" + address + "' is neither a unix socket path (/run/x.sock) nor host:port";
        return -1;
    }
    if (fd >= 0 && listen(fd, 1024) != 0) {
        error = "cannot listen on " + address + ": " + std::strerror(errno);
        close(fd);
        return -1;
    }
    return fd;
}

bool is_listening_socket(int fd) {
    int listening = 0;
    socklen_t length = sizeof listening;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0 && listening;
}

int socket_activated_fd() {
    const int kFirstFd = 3;  // SD_LISTEN_FDS_START
    const char* pid = std::getenv("LISTEN_PID");
    const char* fds = std::getenv("LISTEN_FDS");
    bool ours = pid && fds && std::strtol(pid, nullptr, 10) == static_cast<long>(getpid()) &&
                std::strtol(fds, nullptr, 10) >= 1;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (!ours || !is_listening_socket(kFirstFd)) return -1;
    fcntl(kFirstFd, F_SETFD, FD_CLOEXEC);
    return kFirstFd;
}

int run_fastcgi(const Config& config, int listen_fd) {
    if (!install_signals()) return 1;
    FCGX_Init();
    return serve_fastcgi(config, listen_fd, g_stop_pipe[0], g_reload_pipe[0]);
}

int run_cgi(const Config& config) {
    if (!install_signals()) return 1;
    return serve_cgi(config, g_stop_pipe[0]);
}
