// The pieces of parse_config, one file per job — config.cpp: the process;
// endpoint_settings.cpp: the upstream endpoint; access_policy.cpp: who may use the proxy —
// and the small readers of environment variables they share (defined in config.cpp).
#pragma once

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "config.h"
#include "text.h"

// A variable's value; unset and empty are the same.
std::string environment_value(const Environment& env, const char* name);

// Reads "key=value,key=value" into `pairs`, in order; `what` names the halves in errors.
bool parse_pairs(const char* variable, const std::string& text, const char* what,
                 std::vector<std::pair<std::string, std::string>>& pairs, std::string& error);

// A whole number from 1 to `max`.
bool parse_positive(const std::string& text, long long max, long long& out);

// The content of a secret's file ("file:/path": a mounted Docker or Kubernetes secret,
// systemd's LoadCredential=), without the whitespace around it; false when unreadable.
bool read_secret_file(const std::string& path, std::string& secret);

// A secret setting: "file:/path" or the secret itself; no control character in it.
bool read_secret_setting(const char* variable, const std::string& value, std::string& secret, std::string& error);

// Reads an optional positive integer setting; leaves `out` alone when unset.
template <typename T>
bool read_number(const Environment& env, const char* name, long long max, T& out,
                 std::string& error) {
    std::string text = trim(environment_value(env, name));
    if (text.empty()) return true;
    long long value = 0;
    if (!parse_positive(text, max, value)) {
        error = std::string(name) + ": '" + text + "' is not a whole number from 1 to " +
                std::to_string(max);
        return false;
    }
    out = static_cast<T>(value);
    return true;
}

// "a, b,,c" -> {"a", "b", "c"}
std::vector<std::string> list_of(const std::string& text);

// A model name an operator configures: it may become a metric label.
bool check_model_name(const char* variable, const std::string& model, std::string& error);
bool check_model_names(const char* variable, const std::vector<std::string>& models, std::string& error);

// A setting that takes one of a few words, in any case; unset, `out` keeps its default.
template <typename T>
struct Choice {
    const char* word;
    T value;
};

template <typename T>
bool read_choice(const Environment& env, const char* variable, std::initializer_list<Choice<T>> choices,
                 const char* expected, T& out, std::string& error) {
    std::string word = lowercase(trim(environment_value(env, variable)));
    if (word.empty()) return true;
    for (const Choice<T>& choice : choices)
        if (word == choice.word) {
            out = choice.value;
            return true;
        }
    error = std::string(variable) + ": '" + log_safe(word, 40) + "' is not " + expected;
    return false;
}

// AZURE_OPENAI_PROXY_MODE, AZURE_OPENAI_ENDPOINT, _APIVERSION(_ROUTES), _MODEL_MAPPER, _TOKEN.
bool read_endpoint_settings(const Environment& env, EndpointSettings& settings, std::string& error);

// AZURE_OPENAI_PROXY_API_KEYS, _ADMIN_KEYS, _CORS_ORIGINS and _ALLOWED_MODELS.
bool read_access_policy(const Environment& env, AccessPolicy& policy, std::string& error);

// Client keys are the proxy's own: with them, a server-side key must replace them upstream.
bool keys_need_token(const Config& c, std::string& error);
