// Token usage read from an answer as it is relayed, without holding it: the last
// "prompt_tokens"/"input_tokens" and "completion_tokens"/"output_tokens" numbers seen, in a
// JSON answer or an event stream (the usage chunk), keys cut between pieces included.
#pragma once

#include <cstddef>

class UsageScanner {
public:
    void feed(const char* data, size_t size);
    long long prompt_tokens() const { return prompt_; }          // -1: not seen
    long long completion_tokens() const { return completion_; }  // -1: not seen

private:
    void scan(const char* data, size_t size);

    static const size_t kCarry = 48;  // longer than a key, its colon, a space and a number
    char carry_[kCarry];              // the end of what came before (no allocation a piece)
    size_t carried_ = 0;
    long long prompt_ = -1;
    long long completion_ = -1;
};
