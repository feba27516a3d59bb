// The socket the web server reaches the proxy on: a unix socket (its owner and mode) or a
// TCP address, opened here or handed over by systemd's socket activation.
// Tests: tests/integration: commands (unix and TCP addresses) and package (systemd socket activation).
#include "listen_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "text.h"
#include "unique_fd.h"

namespace {

const int kListenBacklog = 4096;

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

UniqueFd open_unix_socket(const std::string& path, const std::string& owner, std::string& error) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) {
        error = "unix socket path is too long: " + path;
        return UniqueFd();
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct stat existing;
    if (fd.valid() && ::stat(path.c_str(), &existing) == 0 && S_ISSOCK(existing.st_mode)) {
        // A socket left by an earlier run is replaced; one a live server answers on is not.
        if (connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
            error = "another server is listening on " + path;
            return UniqueFd();
        }
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            error = "cannot remove the stale socket " + path + ": " + std::strerror(errno);
            return UniqueFd();
        }
    }
    if (!fd.valid() || bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        error = "cannot bind unix socket " + path + ": " + std::strerror(errno);
        return UniqueFd();
    }
    // Only the web server's group may talk FastCGI to us: a socket left at the umask's
    // mode is not served.
    bool ready = chmod(path.c_str(), 0660) == 0;
    if (!ready) error = "cannot make " + path + " mode 0660: " + std::strerror(errno);
    else if (!owner.empty()) ready = give_socket_to(path, owner, error);
    if (!ready) {
        fd.reset();
        ::unlink(path.c_str());
        return UniqueFd();
    }
    return fd;
}

UniqueFd open_tcp_socket(const std::string& address, std::string& error) {
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
        return UniqueFd();
    }
    UniqueFd fd(socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int on = 1;
    if (!fd.valid() || setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0) {
        error = "cannot bind " + address + ": " + std::strerror(errno);
        fd.reset();
    }
    freeaddrinfo(found);
    return fd;
}


}  // namespace

UniqueFd open_listen_socket(const std::string& address, const std::string& owner, std::string& error) {
    UniqueFd fd;
    if (starts_with(address, "/") || starts_with(address, "./")) {
        fd = open_unix_socket(address, owner, error);
    } else if (address.find(':') != std::string::npos) {
        fd = open_tcp_socket(address, error);
    } else {
        error = "'" + address + "' is neither a unix socket path (/run/x.sock) nor host:port";
        return UniqueFd();
    }
    // Room for a burst of new streams; the kernel caps it at net.core.somaxconn.
    if (fd.valid() && listen(fd.get(), kListenBacklog) != 0) {
        error = "cannot listen on " + address + ": " + std::strerror(errno);
        return UniqueFd();
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
    // Nothing is ever executed, so a descriptor left open across exec harms no one.
    if (fcntl(kFirstFd, F_SETFD, FD_CLOEXEC) != 0)
        std::fprintf(stderr, "azure-openai-proxy: the socket-activated descriptor stays open across exec (fcntl FD_CLOEXEC): %s\n",
                     std::strerror(errno));
    return kFirstFd;
}

