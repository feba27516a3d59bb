// The state file's edge: opening, creating and rebuilding the file under its flock,
// checking its header, mapping it, and the robust mutex taken with a timeout. The SIGBUS
// handler that survives a truncated file is state_fault.cpp; whether a process still runs,
// process_liveness.cpp.
#include "state_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "state_fault.h"
#include "unique_fd.h"

using namespace state_file_internal;

namespace {

const uint64_t kStateMagic = 0x4554415453504f41ULL;  // "AOPSTATE"
// A decision holds the lock for microseconds: only a garbage mutex (or a stopped holder)
// keeps it this long, and the file is then taken for damaged.
const long kLockTimeoutMs = 2000;
const size_t kPage = 4096;
static_assert(sizeof(StateHeader) <= kPage, "the header keeps its page when a retired file's pages are freed");

// In a shared directory such as /dev/shm another user could have made the file first:
// only one of this user's own, that no one else may read or write, is used.
bool owned_alone(int fd, const std::string& path, std::string& error) {
    struct stat info;
    if (fstat(fd, &info) != 0) {
        error = "cannot read " + path + ": " + std::strerror(errno);
        return false;
    }
    if (info.st_uid != geteuid() || (info.st_mode & 077) != 0 || !S_ISREG(info.st_mode)) {
        error = path + " belongs to another user or others may use it";
        return false;
    }
    return true;
}

bool init_robust_mutex(pthread_mutex_t* mutex, std::string& error) {
    pthread_mutexattr_t attributes;
    int result = pthread_mutexattr_init(&attributes);
    if (result == 0) {
        result = pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
        if (result == 0) result = pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
        if (result == 0) result = pthread_mutex_init(mutex, &attributes);
        pthread_mutexattr_destroy(&attributes);
    }
    if (result != 0) error = std::string("cannot make the state's lock: ") + std::strerror(result);
    return result == 0;
}

// A header and its mutex at the start of `memory` (the rest stays zero).
bool init_header(void* memory, size_t size, uint32_t version, std::string& error) {
    auto* header = static_cast<StateHeader*>(memory);
    if (!init_robust_mutex(&header->mutex, error)) return false;
    header->version = version;
    header->size = size;
    header->retired = 0;
    __atomic_store_n(&header->magic, kStateMagic, __ATOMIC_RELEASE);
    return true;
}

// Why the open file is not a state file of this layout ("" when it is one).
std::string mismatch(int fd, size_t size, uint32_t version) {
    struct stat info;
    if (fstat(fd, &info) != 0) return std::string("cannot be read: ") + std::strerror(errno);
    if (info.st_size != static_cast<off_t>(size))
        return "is " + std::to_string(info.st_size) + " bytes long, not " + std::to_string(size);
    char bytes[offsetof(StateHeader, mutex)];
    if (pread(fd, bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) return "has no readable header";
    StateHeader header;
    std::memcpy(&header, bytes, sizeof bytes);
    if (header.magic != kStateMagic) return "does not start with this program's header";
    if (header.version != version)
        return "has layout version " + std::to_string(header.version) + ", not " + std::to_string(version);
    if (header.size != size) return "says it is " + std::to_string(header.size) + " bytes long, not " + std::to_string(size);
    if (header.retired) return "was replaced by another file";
    return "";
}

void log_rebuilt(const std::string& path, const std::string& why) {
    std::fprintf(stderr, "azure-openai-proxy: the state file %s %s: rebuilt (a fresh file in its place; counters start again)\n",
                 path.c_str(), why.c_str());
}

// A fresh, initialised file put at `path`: in place of the file there (`replace`, under
// that file's flock), else only where there is none (two processes may race to make it).
bool create_file(const std::string& path, size_t size, uint32_t version, bool replace, std::string& error) {
    std::vector<char> temp(path.begin(), path.end());
    for (char c : std::string(".XXXXXX")) temp.push_back(c);
    temp.push_back('\0');
    UniqueFd fd(mkostemp(temp.data(), O_CLOEXEC));  // mode 0600, a name no one else has
    if (!fd.valid()) {
        error = "cannot create a file beside " + path + ": " + std::strerror(errno);
        return false;
    }
    bool ok = ftruncate(fd.get(), static_cast<off_t>(size)) == 0;
    if (!ok) error = "cannot size " + path + ": " + std::strerror(errno);
    void* memory = ok ? mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0) : MAP_FAILED;
    if (ok && memory == MAP_FAILED) {
        error = "cannot map " + path + ": " + std::strerror(errno);
        ok = false;
    }
    if (ok) {
        ok = init_header(memory, size, version, error);
        munmap(memory, size);
    }
    bool placed = ok && (replace ? rename(temp.data(), path.c_str()) == 0
                                 : (link(temp.data(), path.c_str()) == 0 || errno == EEXIST));
    if (ok && !placed) error = "cannot put a fresh state file at " + path + ": " + std::strerror(errno);
    if (!(replace && placed)) unlink(temp.data());
    return placed;
}

}  // namespace

StateMapping::StateMapping(void* base, size_t size, uint32_t version, int fd, std::string path)
    : base_(base), size_(size), version_(version), fd_(fd), path_(std::move(path)),
      fault_range_(register_fault_range(base, size, fd)) {}

StateMapping::~StateMapping() {
    unregister_fault_range(fault_range_);
    munmap(base_, size_);
    if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<StateMapping> StateMapping::attach(const std::string& path, size_t size, uint32_t version,
                                                   std::string& error) {
    for (int attempt = 0; attempt < 8; ++attempt) {
        UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
        if (!fd.valid()) {
            if (errno != ENOENT) {
                error = "cannot open " + path + ": " + std::strerror(errno);
                return nullptr;
            }
            if (!create_file(path, size, version, false, error)) return nullptr;
            continue;
        }
        if (flock(fd.get(), LOCK_EX) != 0) {
            error = "cannot lock " + path + ": " + std::strerror(errno);
            return nullptr;
        }
        if (!owned_alone(fd.get(), path, error)) return nullptr;
        if (!same_file(path, fd.get())) continue;  // replaced or removed meanwhile
        std::string why = mismatch(fd.get(), size, version);
        if (!why.empty()) {
            if (!create_file(path, size, version, true, error)) return nullptr;
            log_rebuilt(path, why);
            continue;
        }
        void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
        if (memory == MAP_FAILED) {
            error = "cannot map " + path + ": " + std::strerror(errno);
            return nullptr;
        }
        return std::unique_ptr<StateMapping>(new StateMapping(memory, size, version, fd.release(), path));
    }
    error = "cannot open " + path + ": it keeps being replaced";
    return nullptr;
}

std::unique_ptr<StateMapping> StateMapping::attach_existing(const std::string& path, size_t size, uint32_t version) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    std::string error;
    if (!fd.valid() || !owned_alone(fd.get(), path, error) || !mismatch(fd.get(), size, version).empty()) return nullptr;
    void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (memory == MAP_FAILED) return nullptr;
    return std::unique_ptr<StateMapping>(new StateMapping(memory, size, version, fd.release(), path));
}

std::unique_ptr<StateMapping> StateMapping::private_memory(size_t size, uint32_t version) {
    void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return nullptr;
    std::string error;
    if (!init_header(memory, size, version, error)) {
        munmap(memory, size);
        return nullptr;
    }
    return std::unique_ptr<StateMapping>(new StateMapping(memory, size, version, -1, ""));
}

bool StateMapping::intact() const {
    int range = fault_range_.load(std::memory_order_relaxed);
    if (range >= 0 && fault_flag(range).load(std::memory_order_relaxed)) return false;
    auto* header = static_cast<StateHeader*>(base_);
    return __atomic_load_n(&header->magic, __ATOMIC_ACQUIRE) == kStateMagic &&
           __atomic_load_n(&header->version, __ATOMIC_RELAXED) == version_ &&
           __atomic_load_n(&header->size, __ATOMIC_RELAXED) == size_ &&
           __atomic_load_n(&header->retired, __ATOMIC_RELAXED) == 0;
}

bool StateMapping::lock() {
    if (!intact()) return false;
    pthread_mutex_t* mutex = &static_cast<StateHeader*>(base_)->mutex;
    timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += kLockTimeoutMs / 1000;
    deadline.tv_nsec += (kLockTimeoutMs % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) deadline.tv_sec += 1, deadline.tv_nsec -= 1000000000;
    int result = pthread_mutex_clocklock(mutex, CLOCK_MONOTONIC, &deadline);
    if (result == EOWNERDEAD) {
        // Its holder died: the lock is given back, and what it was changing is used as
        // it stands (at worst a counter or a slot of that moment is off).
        result = pthread_mutex_consistent(mutex);
        if (result != 0) pthread_mutex_unlock(mutex);
    }
    if (result != 0) {  // ETIMEDOUT, ENOTRECOVERABLE, EINVAL: a mutex no one can use
        lock_error_ = result;
        return false;
    }
    if (!intact()) {  // damaged while this process waited
        pthread_mutex_unlock(mutex);
        return false;
    }
    return true;
}

void StateMapping::unlock() { pthread_mutex_unlock(&static_cast<StateHeader*>(base_)->mutex); }

void StateMapping::release_file_lock() {
    if (fd_ >= 0) flock(fd_, LOCK_UN);
}

bool StateMapping::at_path() const { return fd_ >= 0 && same_file(path_, fd_); }

bool StateMapping::hold_file_lock_at_path() {
    return fd_ >= 0 && flock(fd_, LOCK_EX) == 0 && same_file(path_, fd_);
}

std::string StateMapping::damage() const {
    int range = fault_range_.load();
    if (range >= 0 && fault_flag(range).load()) return "was truncated under the running processes";
    if (!intact()) return "was overwritten under the running processes";
    if (lock_error_) return std::string("has a lock no process can take (") + std::strerror(lock_error_) + ")";
    return "was damaged";
}

void StateMapping::replace_at_path() {
    if (!hold_file_lock_at_path()) {
        release_file_lock();
        return;  // another process has put a fresh file there already
    }
    std::string error;
    if (create_file(path_, size_, version_, true, error)) log_rebuilt(path_, damage());
    else std::fprintf(stderr, "azure-openai-proxy: warning: %s\n", error.c_str());
    release_file_lock();
}

void StateMapping::retire() {
    if (fd_ < 0) return;
    if (!same_file(path_, fd_)) {  // (a file still at the path is the one the process moved to)
        auto* header = static_cast<StateHeader*>(base_);
        __atomic_store_n(&header->retired, 1, __ATOMIC_RELEASE);
        // Never left short: a process still on it would fault where no handler knows it.
        struct stat info;
        if (fstat(fd_, &info) == 0 && info.st_size < static_cast<off_t>(size_) &&
            ftruncate(fd_, static_cast<off_t>(size_)) != 0)
            return;  // the descriptor stays, and with it the handler's cure
        // Its pages are freed (the header's page stays, with its mark); where the file
        // system cannot, they go when the last process leaves.
        if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, kPage, static_cast<off_t>(size_ - kPage)) != 0 &&
            errno != EOPNOTSUPP)
            std::fprintf(stderr, "azure-openai-proxy: warning: cannot free the old state file's pages: %s\n",
                         std::strerror(errno));
    }
    unregister_fault_range(fault_range_.exchange(-1));
    ::close(fd_.exchange(-1));
}

bool same_file(const std::string& path, int fd) {
    struct stat opened, named;
    return fstat(fd, &opened) == 0 && stat(path.c_str(), &named) == 0 && opened.st_ino == named.st_ino &&
           opened.st_dev == named.st_dev;
}
