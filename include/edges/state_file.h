// The shared state's file: one fixed layout that every process of the host maps, opening
// with a header (magic, layout version, size) that is checked when the file is opened and
// at every lock. A file that does not match (wrong size, garbage, another version) is
// rebuilt: a fresh file takes its place at the path (a new inode, made under the old one's
// flock, with one line on stderr), and every process still on the old one moves to it,
// losing only counters. A file truncated under the processes would raise SIGBUS at the
// next access to the lost pages: a handler extends the file again (the access then reads
// zeros) and marks the mapping damaged. The lock is a robust process-shared mutex taken
// with a timeout: a holder that died gives it back, a garbage one never hangs a process.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

// The first bytes of the file (the layout that follows is the caller's).
struct StateHeader {
    uint64_t magic;
    uint32_t version;  // the caller's layout version
    uint32_t retired;  // 1: a rebuilt file has taken this one's place at the path
    uint64_t size;     // of the whole layout, this header included
    pthread_mutex_t mutex;
};

class StateMapping {
public:
    // The file at `path`, opened (created, or rebuilt when it does not match) and mapped,
    // with its flock held until release_file_lock(). Null with `error` when it cannot be.
    static std::unique_ptr<StateMapping> attach(const std::string& path, size_t size, uint32_t version,
                                                std::string& error);
    // The file at `path` only if it exists and matches; no flock held.
    static std::unique_ptr<StateMapping> attach_existing(const std::string& path, size_t size, uint32_t version);
    // Memory of this process alone (when no file can be shared).
    static std::unique_ptr<StateMapping> private_memory(size_t size, uint32_t version);
    ~StateMapping();
    StateMapping(const StateMapping&) = delete;
    StateMapping& operator=(const StateMapping&) = delete;

    void* base() const { return base_; }
    bool shared() const { return fd_ >= 0; }
    // The header matches and no access has faulted since the mapping was made.
    bool intact() const;
    // Takes the mutex; false (not held) when the file is damaged or its mutex unusable.
    bool lock();
    void unlock();
    void release_file_lock();
    // The path still names this file.
    bool at_path() const;
    // Takes the flock and says whether the path still names this file (the caller then
    // may remove it); the flock is held until release_file_lock().
    bool hold_file_lock_at_path();
    // Under the flock: a fresh file replaces this damaged one at the path, unless another
    // process did so already. Says so in one line on stderr.
    void replace_at_path();
    // The process moved to another file: this one is marked so (those still on it move
    // too), its pages are freed and its descriptor closed. The mapping itself stays until
    // this object goes (a thread or the C library's robust-mutex list may still touch it).
    void retire();

private:
    StateMapping(void* base, size_t size, uint32_t version, int fd, std::string path);
    std::string damage() const;  // why the file does not match, for the log line

    void* base_;
    size_t size_;
    uint32_t version_;
    std::atomic<int> fd_;  // -1: private memory (or retired)
    std::string path_;
    std::atomic<int> fault_range_;  // this mapping's entry for the SIGBUS handler (-1: none)
    std::atomic<int> lock_error_{0};  // what the last failed lock said (0: none)
};

// The mapping's lock for one scope: taken when made (false when it could not be: the file
// is damaged or its mutex unusable), given back when the scope ends.
class StateLock {
public:
    explicit StateLock(StateMapping& mapping) : mapping_(mapping), held_(mapping.lock()) {}
    ~StateLock() {
        if (held_) mapping_.unlock();
    }
    StateLock(const StateLock&) = delete;
    StateLock& operator=(const StateLock&) = delete;
    explicit operator bool() const { return held_; }

private:
    StateMapping& mapping_;
    bool held_;
};

// Whether `path` still names the file open on `fd` (not one put in its place since).
bool same_file(const std::string& path, int fd);
