// A request body held while its model is looked for: in memory while small, then in an
// unlinked temporary file, so a 25 MiB upload costs disk, not memory.
#pragma once

#include <cstdio>
#include <string>

class Spool {
public:
    explicit Spool(size_t memory_limit = 1 << 20);
    ~Spool();
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    bool write(const char* data, size_t size);  // false when the disk refuses
    long long size() const { return size_; }

    // Reading, from the start, with bytes [begin, end) replaced by `with` when begin >= 0.
    void rewind(long long begin = -1, long long end = -1, std::string with = "");
    long long output_size() const;
    long read(char* out, size_t size);  // 0 at the end, -1 on error

private:
    long read_raw(char* out, size_t size);

    size_t memory_limit_;
    std::string memory_;
    std::FILE* file_ = nullptr;
    long long size_ = 0;
    long long position_ = 0;      // in the stored body
    long long splice_begin_ = -1, splice_end_ = -1;
    std::string splice_with_;
    size_t splice_sent_ = 0;
    bool failed_ = false;  // the file could not be rewound: reads fail
};
