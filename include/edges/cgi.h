// Plain CGI: one request per process, read from the environment and stdin, answered on
// stdout (Apache's mod_cgi, shared hosting without FastCGI).
#pragma once

#include "config.h"

// Serves the single request of a plain CGI invocation; `stop_fd` turns readable on SIGTERM.
int serve_cgi(const Config& config, int stop_fd);
