// Stand-ins shared by the unit tests of the exchange room: a connection that hands over
// params and a body and keeps the answer, a host that counts how an exchange ends, and a
// shared state in a temporary directory.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "connection.h"
#include "exchange.h"
#include "shared_state.h"
#include "state_test_support.h"

// Params given, the answer kept whole. `room`: how many more bytes can_take() lets in
// (unbounded by default); `gone`: the web server's connection is gone, writes fail.
class FakeConnection : public Connection {
public:
    explicit FakeConnection(std::vector<std::pair<std::string, std::string>> params = {}, std::string body = "")
        : owned_(std::move(params)), body_(std::move(body)) {
        for (const auto& [name, value] : owned_) params_.emplace_back(name, value);
    }
    const CgiParams& params() const override { return params_; }
    long read_body(char* buffer, size_t size) override {
        size_t n = std::min(size, body_.size() - read_);
        body_.copy(buffer, n, read_);
        read_ += n;
        return static_cast<long>(n);
    }
    bool can_take(size_t size) const override { return size <= room; }
    bool write(const char* data, size_t size) override {
        if (gone) return false;
        answer.append(data, size);
        room = room >= size ? room - size : 0;
        return true;
    }
    // The answer after its CGI head.
    std::string body() const {
        size_t end = answer.find("\r\n\r\n");
        return end == std::string::npos ? std::string() : answer.substr(end + 4);
    }

    std::string answer;
    size_t room = static_cast<size_t>(-1);
    bool gone = false;

private:
    std::vector<std::pair<std::string, std::string>> owned_;
    CgiParams params_;
    std::string body_;
    size_t read_ = 0;
};

// Whether `part` is in `text` (answers, heads, messages).
inline bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class FakeHost : public ExchangeHost {
public:
    void flush_soon() override {}
    void wait_writable() override {}
    void finished() override { ++finishes; }
    int finishes = 0;
};

// A shared state in a directory of its own, removed with it.
struct TempSharedState : state_test::StateDir {
    std::unique_ptr<SharedState> state = state_test::open_state(path);
};
