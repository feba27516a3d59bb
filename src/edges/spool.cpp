// The request body spool (spool.h): memory first, then an unlinked temporary file.
#include "spool.h"

#include <algorithm>

Spool::Spool(size_t memory_limit) : memory_limit_(memory_limit) {}

Spool::~Spool() {
    if (file_) std::fclose(file_);
}

bool Spool::write(const char* data, size_t size) {
    if (!file_ && memory_.size() + size > memory_limit_) {
        file_ = std::tmpfile();  // unlinked at once: nothing is left behind, even on a crash
        if (!file_ || std::fwrite(memory_.data(), 1, memory_.size(), file_) != memory_.size())
            return false;
        std::string().swap(memory_);
    }
    if (file_) {
        if (std::fwrite(data, 1, size, file_) != size) return false;
    } else {
        memory_.append(data, size);
    }
    size_ += static_cast<long long>(size);
    return true;
}

void Spool::rewind(long long begin, long long end, std::string with) {
    position_ = 0;
    splice_begin_ = begin;
    splice_end_ = end;
    splice_with_ = std::move(with);
    splice_sent_ = 0;
    // A file that cannot be flushed or rewound makes every read fail: the body is not sent cut.
    failed_ = file_ && (std::fflush(file_) != 0 || std::fseek(file_, 0, SEEK_SET) != 0);
}

long long Spool::output_size() const {
    if (splice_begin_ < 0) return size_;
    return size_ - (splice_end_ - splice_begin_) + static_cast<long long>(splice_with_.size());
}

long Spool::read_raw(char* out, size_t size) {
    size = static_cast<size_t>(std::min<long long>(static_cast<long long>(size), size_ - position_));
    if (size == 0) return 0;
    if (file_) {
        size_t got = std::fread(out, 1, size, file_);
        if (got == 0) return -1;
        size = got;
    } else {
        std::copy_n(memory_.data() + position_, size, out);
    }
    position_ += static_cast<long long>(size);
    return static_cast<long>(size);
}

long Spool::read(char* out, size_t size) {
    if (failed_) return -1;
    if (splice_begin_ < 0) return read_raw(out, size);
    if (position_ < splice_begin_)  // before the replaced bytes
        return read_raw(out, static_cast<size_t>(std::min<long long>(static_cast<long long>(size), splice_begin_ - position_)));
    if (splice_sent_ < splice_with_.size()) {  // the replacement
        size_t count = std::min(size, splice_with_.size() - splice_sent_);
        std::copy_n(splice_with_.data() + splice_sent_, count, out);
        splice_sent_ += count;
        return static_cast<long>(count);
    }
    if (position_ < splice_end_) {  // skip what was replaced
        if (file_ && std::fseek(file_, splice_end_, SEEK_SET) != 0) return -1;
        position_ = splice_end_;
    }
    return read_raw(out, size);
}
