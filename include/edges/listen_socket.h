// The socket the web server reaches the proxy on (listen_socket.cpp).
#pragma once

#include <string>

#include "unique_fd.h"

// "/path/to.sock" (unix socket, mode 0660, owned by `owner` "user[:group]" when given)
// or "host:port" / ":port" (TCP). Returns the listening descriptor, held for the caller
// (the process's life), or an invalid one with `error` set.
UniqueFd open_listen_socket(const std::string& address, const std::string& owner, std::string& error);

// True when `fd` is a listening socket (what spawn-fcgi, lighttpd and mod_fcgid hand over).
bool is_listening_socket(int fd);

// The listening socket handed over the way systemd does it (LISTEN_PID, LISTEN_FDS, from
// fd 3; systemd-socket-activate too), or -1. The variables are removed, so that nothing
// started later takes them for its own.
int socket_activated_fd();
