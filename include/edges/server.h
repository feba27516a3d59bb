// The process edges: where requests come from (a FastCGI socket, or plain CGI) and
// how the program stops.
#pragma once

#include <string>

#include "config.h"

// "/path/to.sock" (unix socket, mode 0660, owned by `owner` "user[:group]" when given)
// or "host:port" / ":port" (TCP). Returns the listening descriptor, or -1 with `error` set.
int open_listen_socket(const std::string& address, const std::string& owner, std::string& error);

// True when `fd` is a listening socket (what spawn-fcgi, lighttpd and mod_fcgid hand over).
bool is_listening_socket(int fd);

// The listening socket handed over the way systemd does it (LISTEN_PID, LISTEN_FDS, from
// fd 3; systemd-socket-activate too), or -1. The variables are removed, so that nothing
// started later takes them for its own.
int socket_activated_fd();

// Serves FastCGI requests on `listen_fd` with config.threads threads until SIGTERM or
// SIGINT; returns the exit status.
int run_fastcgi(const Config& config, int listen_fd);

// Keeps config.workers processes serving FastCGI on `listen_fd`, starts a new one when
// one dies, and stops them all on SIGTERM or SIGINT; returns the exit status.
int run_supervised(const Config& config, int listen_fd);

// Serves the single request of a plain CGI invocation; returns the exit status.
int run_cgi(const Config& config);
