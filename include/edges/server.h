// The process edges: where requests come from (a FastCGI socket, or plain CGI) and
// how the program stops.
#pragma once

#include <string>

#include "config.h"
#include "listen_socket.h"

// Serves FastCGI requests on `listen_fd` with config.threads threads until SIGTERM or
// SIGINT; returns the exit status.
int run_fastcgi(const Config& config, int listen_fd);

// Keeps config.workers processes serving FastCGI on `listen_fd`, starts a new one when
// one dies, and stops them all on SIGTERM or SIGINT; returns the exit status.
int run_supervised(const Config& config, int listen_fd);

// Serves the single request of a plain CGI invocation; returns the exit status.
int run_cgi(const Config& config);
