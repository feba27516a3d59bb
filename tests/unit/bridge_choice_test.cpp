// bridge_choice.cpp: the Responses-only families, the routing file's word, what was learned,
// Azure's OperationNotSupported read.
#include <boost/test/unit_test.hpp>

#include <string>

#include "bridge_choice.h"
#include "json_ptr.h"

BOOST_AUTO_TEST_SUITE(bridge_choice_suite)

BOOST_AUTO_TEST_CASE(the_documented_responses_only_families_and_only_them) {
    for (const char* name : {"codex-mini", "codex-mini-2025-05-16", "gpt-5-codex", "GPT-5-Codex", "gpt-5.1-codex",
                             "gpt-5.1-codex-mini", "gpt-5.1-codex-max", "o1-pro", "o3-pro", "o3-pro-2025-06-10",
                             "gpt-5-pro", "gpt-5-pro-2025-10-06", "gpt-5.2-pro", "computer-use-preview",
                             "my-codex-deployment"})
        BOOST_TEST(responses_only_family(name), name);
    for (const char* name : {"gpt-5", "gpt-5-mini", "o3", "o3-mini", "o4-mini", "gpt-4o", "gpt-5-chat", "pro", "gpt-4-pro",
                             "o10-pro", "codexy", "", "gpt-5.-pro", "my-o3-pro"})
        BOOST_TEST(!responses_only_family(name), name);
    // Azure AI Foundry's models that are not OpenAI's stay on Chat Completions ("Codestral" is no "codex").
    for (const char* name : {"DeepSeek-R1", "MAI-DS-R1", "Llama-3.3-70B-Instruct", "Mistral-Large-2411", "Codestral-2501",
                             "grok-3", "grok-3-mini", "grok-4", "Phi-4-reasoning", "Llama-3.2-90B-Vision-Instruct"})
        BOOST_TEST(!responses_only_family(name), name);
}

BOOST_AUTO_TEST_CASE(the_operator_first_then_the_families_then_what_was_learned) {
    ParamOverrides overrides{{"corp-codex", kResponsesOnly}, {"o3-pro", 0}, {"prod-pro", reasoning_params()}};
    BOOST_TEST(bridge_to_responses("corp-codex", "dep", &overrides, 0));
    BOOST_TEST(bridge_to_responses("x", "corp-codex", &overrides, 0));
    // The operator says chat: neither the family nor what was learned bridges it.
    BOOST_TEST(!bridge_to_responses("o3-pro", "o3-pro", &overrides, kResponsesOnly));
    BOOST_TEST(!bridge_to_responses("gpt-5-pro", "prod-pro", &overrides, kResponsesOnly));
    BOOST_TEST(bridge_to_responses("gpt-5-codex", "any-name", nullptr, 0));
    BOOST_TEST(bridge_to_responses("alias", "o3-pro", nullptr, 0));
    BOOST_TEST(!bridge_to_responses("gpt-4o", "gpt-4o", nullptr, reasoning_params()));
    BOOST_TEST(bridge_to_responses("mystery", "mystery", nullptr, kResponsesOnly | param_bit("max_tokens")));
    BOOST_TEST((kResponsesOnly & reasoning_params()) == 0u);
}

BOOST_AUTO_TEST_CASE(the_routing_files_value_responses) {
    ParamSet out = 1;
    JsonPtr value(cJSON_CreateString("responses"));
    BOOST_TEST(read_param_override(value.get(), out) == "");
    BOOST_TEST(out == kResponsesOnly);
}

BOOST_AUTO_TEST_CASE(azures_operation_not_supported_and_nothing_else) {
    std::string azure =
        R"({"error":{"code":"OperationNotSupported","message":"The chatCompletion operation does not work with the specified model, gpt-5-codex."}})";
    BOOST_TEST(chat_not_supported(400, azure));
    BOOST_TEST(!chat_not_supported(404, azure));
    BOOST_TEST(!chat_not_supported(400, R"({"error":{"code":"unsupported_parameter","param":"max_tokens"}})"));
    BOOST_TEST(!chat_not_supported(400, R"({"error":{"code":["OperationNotSupported"]}})"));
    // DeepSeek-R1's refusal of tools is no sign of a Responses-only deployment.
    BOOST_TEST(!chat_not_supported(400, R"({"error":{"code":"UnsupportedToolUse","message":"Request included unsupported tool use."}})"));
    BOOST_TEST(!chat_not_supported(400, "OperationNotSupported"));
    BOOST_TEST(!chat_not_supported(400, ""));
}

BOOST_AUTO_TEST_SUITE_END()
