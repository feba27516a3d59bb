// reasoning_params.cpp: the families, the overrides, the rewrite byte for byte, Azure's 400 read.
#include <boost/test/unit_test.hpp>

#include <string>

#include "reasoning_params.h"

BOOST_AUTO_TEST_SUITE(reasoning_params_suite)

BOOST_AUTO_TEST_CASE(the_documented_families_and_only_them) {
    for (const char* name : {"o1", "o1-mini", "o1-2024-12-17", "o3", "o3-mini", "O3-Mini", "o4-mini", "o4-mini-2025-04-16",
                             "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5-2025-08-07", "gpt-5.1", "gpt-5.1-chat", "gpt-5.2-mini", "GPT-5.1", "GPT-5-Mini"})
        BOOST_TEST(reasoning_family(name), name);
    for (const char* name : {"gpt-4o", "gpt-4o-mini", "gpt-35-turbo", "gpt-5-chat", "gpt-5-chat-latest", "o10", "o4", "gpt-50",
                             "my-o3", "", "gpt-4.1", "GPT-5-Chat"})
        BOOST_TEST(!reasoning_family(name), name);
}

// Azure AI Foundry's models that are not OpenAI's take what they are sent: DeepSeek-R1
// accepts max_tokens and temperature ("R1" is no "o1"); none of their names is a family.
BOOST_AUTO_TEST_CASE(foundry_models_that_are_not_openais_are_no_family) {
    for (const char* name : {"DeepSeek-R1", "DeepSeek-R1-0528", "deepseek-r1", "MAI-DS-R1", "DeepSeek-V3-0324",
                             "Llama-3.3-70B-Instruct", "Llama-33-70B-Instruct", "Llama-4-Maverick-17B-128E-Instruct-FP8",
                             "Mistral-Large-2411", "mistral-medium-2505", "Codestral-2501", "Ministral-3B", "grok-3",
                             "grok-3-mini", "grok-4", "Phi-4-reasoning", "cohere-command-a"})
        BOOST_TEST(params_to_fix(name, name, nullptr) == 0u, name);
}

BOOST_AUTO_TEST_CASE(overrides_come_first_model_then_deployment) {
    ParamOverrides overrides{{"corp-llm", reasoning_params()}, {"o3-mini", 0}, {"picky", param_bit("max_tokens")}};
    BOOST_TEST(params_to_fix("corp-llm", "dep", &overrides) == reasoning_params());
    BOOST_TEST(params_to_fix("x", "corp-llm", &overrides) == reasoning_params());
    BOOST_TEST(params_to_fix("o3-mini", "o3-mini", &overrides) == 0u);
    BOOST_TEST(params_to_fix("picky", "o3", &overrides) == param_bit("max_tokens"));
    BOOST_TEST(params_to_fix("gpt-4o", "prod-o3", nullptr) == 0u);
    BOOST_TEST(params_to_fix("o3", "prod-reasoner", nullptr) == reasoning_params());
    BOOST_TEST(params_to_fix("whatever", "gpt-5-mini", nullptr) == reasoning_params());
    BOOST_TEST(param_bit("stream") == 0u);
    BOOST_TEST(param_names(param_bit("top_p") | param_bit("max_tokens")) == "max_tokens,top_p");
}

BOOST_AUTO_TEST_CASE(the_rest_of_the_body_stays_byte_for_byte) {
    std::string body = R"({"model":"o3-mini", "max_tokens":50,"messages":[{"role":"user","content":"x\u00e9 \"temperature\":2"}],)"
                       R"( "temperature":0.70, "top_p":1.0, "n":1,"presence_penalty":0.5,"logit_bias":{"50256":-100},"stream":true})";
    std::string rewrites;
    ParamSet changed = fix_parameters(body, reasoning_params(), rewrites);
    BOOST_TEST(body == R"({"model":"o3-mini", "max_completion_tokens":50,"messages":[{"role":"user","content":"x\u00e9 \"temperature\":2"}],)"
                       R"( "top_p":1.0, "n":1,"stream":true})");
    BOOST_TEST(rewrites == "max_tokens>max_completion_tokens,-temperature,-presence_penalty,-logit_bias");
    BOOST_TEST(changed == (param_bit("max_tokens") | param_bit("temperature") | param_bit("presence_penalty") | param_bit("logit_bias")));
}

BOOST_AUTO_TEST_CASE(defaults_null_and_the_explicit_completion_tokens) {
    std::string body = R"({"max_completion_tokens":9,"max_tokens":50,"temperature":1,"frequency_penalty":0e0,"logprobs":false,"top_logprobs":null})";
    std::string rewrites;
    fix_parameters(body, reasoning_params(), rewrites);
    BOOST_TEST(body == R"({"max_completion_tokens":9,"temperature":1,"frequency_penalty":0e0,"logprobs":false,"top_logprobs":null})");
    BOOST_TEST(rewrites == "-max_tokens");
    std::string last = R"({"a":1,"logprobs":true,"top_logprobs":3})";
    rewrites.clear();
    fix_parameters(last, reasoning_params(), rewrites);
    BOOST_TEST(last == R"({"a":1})");
    BOOST_TEST(rewrites == "-logprobs,-top_logprobs");
}

BOOST_AUTO_TEST_CASE(only_what_is_asked_and_effort_none_keeps_sampling) {
    std::string body = R"({"max_tokens":5,"temperature":0.2})";
    std::string rewrites;
    BOOST_TEST(fix_parameters(body, param_bit("temperature"), rewrites) == param_bit("temperature"));
    BOOST_TEST(body == R"({"max_tokens":5})");
    std::string none = R"({"reasoning_effort":"none","max_tokens":5,"temperature":0.2})";
    rewrites.clear();
    fix_parameters(none, reasoning_params(), rewrites);
    BOOST_TEST(none == R"({"reasoning_effort":"none","max_completion_tokens":5,"temperature":0.2})");
    std::string escaped = R"({"max\u005ftokens":5,"temp\u0065rature":0.2})";  // as Azure reads them
    rewrites.clear();
    fix_parameters(escaped, reasoning_params(), rewrites);
    BOOST_TEST(escaped == R"({"max_completion_tokens":5})");
    std::string untouched = R"({"model":"gpt-4o","temperature":0.2})";
    rewrites.clear();
    BOOST_TEST(fix_parameters(untouched, 0, rewrites) == 0u);
    BOOST_TEST(fix_parameters(untouched, param_bit("max_tokens"), rewrites) == 0u);
    BOOST_TEST(rewrites.empty());
}

BOOST_AUTO_TEST_CASE(azures_400_is_read_for_a_fixable_parameter) {
    BOOST_TEST(fixable_refusal(R"({"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}})") ==
               param_bit("max_tokens"));
    BOOST_TEST(fixable_refusal(R"({"error":{"param":"temperature","code":"unsupported_value"}})") == param_bit("temperature"));
    BOOST_TEST(fixable_refusal(R"({"error":{"param":"messages","code":"unsupported_value"}})") == 0u);
    BOOST_TEST(fixable_refusal(R"({"error":{"code":"content_filter","param":"prompt"}})") == 0u);
    BOOST_TEST(fixable_refusal(R"({"error":{"code":"unsupported_parameter","param":null}})") == 0u);
    // Azure's refusal of tools for DeepSeek-R1: nothing the proxy fixes, relayed as it is.
    BOOST_TEST(fixable_refusal(R"({"error":{"code":"UnsupportedToolUse","message":"Request included unsupported tool use.","status":400}})") == 0u);
    BOOST_TEST(fixable_refusal("not json") == 0u);
    BOOST_TEST(fixable_refusal("") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
