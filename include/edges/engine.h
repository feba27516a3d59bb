// The FastCGI engine. Why this shape: an LLM stream lasts tens of seconds and mostly
// waits, so capacity is how many waiting requests a process can hold. A thread per
// request costs a stack and a wake-up per event; here a few event loops (one per core by
// default) hold every request: each loop accepts connections from the web server, reads a
// request once all its bytes have arrived (a request still arriving after 16 KiB goes to
// a reader thread of its own, where blocking harms no one), and drives all its upstream
// transfers through one curl multi handle. A waiting stream is a few KiB and no CPU.
#pragma once

#include "config.h"

// Serves FastCGI on `listen_fd` until `stop_fd` turns readable (a stop signal); returns
// the exit status, or -1 when requests were still busy at the end of the grace period
// (the caller must then leave without running destructors).
int serve_fastcgi(const Config& config, int listen_fd, int stop_fd, int reload_fd = -1);

// SIGHUP: reads AZURE_OPENAI_PROXY_CONFIG again and logs what came of it; true when the new
// table is in force (false: the old one stays).
bool reload_routing_file(const Config& config);
