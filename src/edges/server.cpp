// The process: signals (a self-pipe), the worker supervisor (start, reap, restart, stop
// with grace), and the choice of FastCGI (engine.cpp) or plain CGI (cgi.cpp).
// Tests: tests/integration/supervisor.test.mjs (workers, signals, grace).
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
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

#include "cgi.h"
#include "engine.h"
#include "shared_state.h"
#include "text.h"
#include "unique_fd.h"

namespace {

using Clock = std::chrono::steady_clock;

// A self-pipe: a signal handler writes a byte to one end, the process waits on the other.
// Held for the process's life; a forked worker closes its copies of the supervisor's and
// makes its own (it leaves by _exit, so no copy is closed behind anyone's back).
struct SignalPipe {
    UniqueFd read_end;
    UniqueFd write_end;
};

// Written once by a stop signal and never drained: every poll on its read end wakes.
SignalPipe g_stop_pipe;
// Written by SIGHUP (read the configuration file again); drained by its reader.
SignalPipe g_reload_pipe;

// One line naming what failed and errno's word for why.
void log_failure(const std::string& what) {
    std::fprintf(stderr, "azure-openai-proxy: %s: %s\n", what.c_str(), std::strerror(errno));
}

void on_signal(int signal_number) {
    int saved = errno;
    char byte = 's';
    // A full pipe already holds a wake-up: nothing is lost when this write fails.
    ssize_t ignored =
        ::write(signal_number == SIGHUP ? g_reload_pipe.write_end.get() : g_stop_pipe.write_end.get(), &byte, 1);
    (void)ignored;
    errno = saved;
}

// Installed before FCGX_Init: libfcgi then keeps its own handlers off these signals
// (its SIGTERM handler only sets a flag that threads blocked in accept never see).
bool open_signal_pipe(SignalPipe& pipe) {
    int ends[2];
    if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) != 0) return false;
    pipe.read_end.reset(ends[0]);
    pipe.write_end.reset(ends[1]);
    return true;
}

bool install_signals() {
    if (!open_signal_pipe(g_stop_pipe) || !open_signal_pipe(g_reload_pipe)) {
        log_failure("cannot create the signal pipes (pipe2)");
        return false;
    }
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    for (int signal_number : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGPIPE}) {
        action.sa_handler = signal_number == SIGPIPE ? SIG_IGN : on_signal;
        if (sigaction(signal_number, &action, nullptr) != 0) {
            log_failure(std::string("cannot handle ") + strsignal(signal_number) + " (sigaction)");
            return false;
        }
    }
    return true;
}

void close_signal_pipes() {
    for (SignalPipe* pipe : {&g_stop_pipe, &g_reload_pipe}) {
        pipe->read_end.reset();
        pipe->write_end.reset();
    }
}

// Every signal held back while it lives, the mask before it restored at its end. A
// process forked meanwhile starts with them held too, and lets them in (release) only
// once its own handlers are in place: one that arrives sooner waits rather than find the
// default action (SIGHUP's ends the process) or the supervisor's handler, which would
// write to the supervisor's pipes.
class SignalsHeld {
public:
    SignalsHeld() {
        sigset_t all;
        sigfillset(&all);
        held_ = sigprocmask(SIG_BLOCK, &all, &previous_) == 0;
    }
    ~SignalsHeld() {
        if (held_ && !release()) log_failure("cannot let signals in again (sigprocmask)");
    }
    SignalsHeld(const SignalsHeld&) = delete;
    SignalsHeld& operator=(const SignalsHeld&) = delete;

    bool held() const { return held_; }
    bool release() {
        held_ = false;
        return sigprocmask(SIG_SETMASK, &previous_, nullptr) == 0;
    }

private:
    sigset_t previous_;
    bool held_ = false;
};

// kill() for one worker: never with a pid <= 0, which would signal a process group or
// every process the user may signal. A worker that is already gone is no failure.
void signal_worker(pid_t pid, int signal_number) {
    if (pid <= 0) return;
    if (kill(pid, signal_number) != 0 && errno != ESRCH)
        log_failure("cannot send " + std::string(strsignal(signal_number)) + " to worker " + std::to_string(pid));
}

// One child that ended, without waiting unless `block`: its pid and status, 0 when none
// has ended yet, or -1 when there is none to wait for (ECHILD) or waitpid failed.
pid_t reap_child(int& status, bool block) {
    pid_t pid;
    do pid = waitpid(-1, &status, block ? 0 : WNOHANG);
    while (pid < 0 && errno == EINTR);
    if (pid < 0 && errno != ECHILD) log_failure("waitpid");
    return pid;
}

// Waits up to `timeout_ms` for a signal's byte; true when one for SIGHUP came. A poll
// that fails is logged once while it keeps failing, and waited out: never a busy loop.
bool wait_for_signal(int timeout_ms) {
    static bool failing = false;
    pollfd waits[2] = {{g_stop_pipe.read_end.get(), POLLIN, 0}, {g_reload_pipe.read_end.get(), POLLIN, 0}};
    int ready = poll(waits, 2, timeout_ms);
    bool failed = ready < 0 && errno != EINTR;
    if (failed && !failing) log_failure("cannot wait for signals (poll)");
    if (failed) std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    failing = failed;
    return ready > 0 && (waits[1].revents & POLLIN);
}

bool stop_requested() {
    pollfd stop = {g_stop_pipe.read_end.get(), POLLIN, 0};
    return poll(&stop, 1, 0) > 0;  // a failing poll is logged by wait_for_signal
}

int serve_worker(const Config& config, int listen_fd) {
    return serve_fastcgi(config, listen_fd, g_stop_pipe.read_end.get(), g_reload_pipe.read_end.get());
}

// The forked child, with every signal still held: its own handlers first, then the
// signals (one that came meanwhile is handled now), then the work.
int run_worker(const Config& config, int listen_fd, pid_t supervisor, SignalsHeld& held) {
    close_signal_pipes();  // the supervisor's
    // Never outlive the supervisor, even when it is killed outright.
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        log_failure("worker " + std::to_string(getpid()) + " may outlive its supervisor (prctl PR_SET_PDEATHSIG)");
    if (getppid() != supervisor) return 0;
    if (!install_signals()) return 1;
    if (!held.release()) {
        log_failure("worker " + std::to_string(getpid()) + ": cannot let signals in (sigprocmask)");
        return 1;
    }
    int status = serve_worker(config, listen_fd);
    return status < 0 ? 0 : status;
}

// A worker: a forked process that serves FastCGI on the shared listening socket. Its pid,
// or -1 with errno set when none could be started.
pid_t start_worker_process(const Config& config, int listen_fd) {
    pid_t supervisor = getpid();
    SignalsHeld held;
    if (!held.held()) return -1;
    pid_t pid = fork();
    if (pid != 0) {
        int fork_error = errno;
        if (!held.release()) log_failure("cannot let signals in again (sigprocmask)");
        errno = fork_error;
        return pid;
    }
    _exit(run_worker(config, listen_fd, supervisor, held));
}

// Keeps config.workers workers running: one that ends is replaced, one that cannot be
// started is tried again a second later; SIGHUP is passed on once the file reads well.
class Supervisor {
public:
    Supervisor(const Config& config, int listen_fd) : config_(config), listen_fd_(listen_fd) {}

    void run() {
        start_missing();
        std::fprintf(stderr, "azure-openai-proxy: supervising %d workers\n", config_.workers);
        while (!stop_requested()) {
            if (wait_for_signal(200)) reload();
            reap();
            if (!stop_requested()) start_missing();
        }
        stop_all();
    }

private:
    using Workers = std::map<pid_t, Clock::time_point>;  // pid -> start time

    // The supervisor reads the file too, so a worker it starts later has the new table.
    void reload() {
        char drained[64];
        while (::read(g_reload_pipe.read_end.get(), drained, sizeof drained) > 0) {
        }
        if (!reload_routing_file(config_)) return;
        for (const auto& worker : workers_) signal_worker(worker.first, SIGHUP);
    }

    void start_missing() {
        Clock::time_point now = Clock::now();
        if (now < next_start_) return;
        while (static_cast<int>(workers_.size()) < config_.workers) {
            pid_t pid = start_worker_process(config_, listen_fd_);
            if (pid < 0) {
                if (failed_starts_++ == 0) log_failure("cannot start a worker, trying again every second (fork)");
                next_start_ = now + std::chrono::seconds(1);
                return;
            }
            if (failed_starts_ > 0)
                std::fprintf(stderr, "azure-openai-proxy: worker %d started after %d failed tries\n", pid, failed_starts_);
            failed_starts_ = 0;
            workers_[pid] = now;
        }
    }

    void reap() {
        int status = 0;
        pid_t pid;
        while ((pid = reap_child(status, false)) > 0) {
            auto it = workers_.find(pid);
            if (it == workers_.end()) continue;
            // A worker that dies at once will die again: do not spin.
            if (Clock::now() - it->second < std::chrono::seconds(1))
                next_start_ = Clock::now() + std::chrono::seconds(1);
            workers_.erase(it);
            // What it held in the shared state (a circuit's trial, places in flight) is
            // given back now, before its replacement starts, not at the next sweep.
            reclaim_dead_processes(config_);
            std::fprintf(stderr, "azure-openai-proxy: worker %d %s %d; starting another\n", pid,
                         WIFSIGNALED(status) ? "killed by signal" : "exited with",
                         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
        if (pid < 0 && errno == ECHILD && !workers_.empty()) {
            std::fprintf(stderr, "azure-openai-proxy: no worker left to wait for; starting them again\n");
            workers_.clear();
        }
    }

    // Workers stop within 1.5 s; whatever is left after 1.8 s is killed.
    void stop_all() {
        for (const auto& worker : workers_) signal_worker(worker.first, SIGTERM);
        auto deadline = Clock::now() + std::chrono::milliseconds(1800);
        int status = 0;
        while (!workers_.empty() && Clock::now() < deadline) {
            pid_t pid = reap_child(status, false);
            if (pid < 0) return;
            if (pid > 0) workers_.erase(pid);
            else std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        for (const auto& worker : workers_) signal_worker(worker.first, SIGKILL);
        for (pid_t pid; !workers_.empty() && (pid = reap_child(status, true)) > 0;) workers_.erase(pid);
    }

    const Config& config_;
    int listen_fd_;
    Workers workers_;
    Clock::time_point next_start_{};  // no worker is started before this
    int failed_starts_ = 0;          // in a row, logged at the first
};

}  // namespace

int run_supervised(const Config& config, int listen_fd) {
    if (!install_signals()) return 1;
    Supervisor(config, listen_fd).run();
    std::fprintf(stderr, "azure-openai-proxy: stopped\n");
    return 0;
}

int run_fastcgi(const Config& config, int listen_fd) {
    if (!install_signals()) return 1;
    return serve_worker(config, listen_fd);
}

int run_cgi(const Config& config) {
    if (!install_signals()) return 1;
    return serve_cgi(config, g_stop_pipe.read_end.get());
}
