// The client's request as the web server describes it in CGI/FastCGI params.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"

struct Header {
    std::string name;   // canonical form, e.g. "Content-Type", "X-Stainless-Os"
    std::string value;
};
using Headers = std::vector<Header>;

// CGI meta-variables: REQUEST_METHOD, REQUEST_URI, HTTP_*, CONTENT_LENGTH, ..., in the
// order the web server sent them. Views into the params the FastCGI connection (or the
// environment) holds until the request is made: nothing is copied but what it keeps.
using CgiParam = std::pair<std::string_view, std::string_view>;
using CgiParams = std::vector<CgiParam>;

// A header of the client's request, seen where the params lie (nothing copied), and once
// the request is made, where keep_own_headers() copied them all, in one room of the
// request's own (the exchange then gives the params back; a CGI call's environment lives
// as long as the process). `name` is the param's name without "HTTP_" ("X_STAINLESS_OS";
// CONTENT_TYPE's is "CONTENT_TYPE"), or a header's own name: header_names_match() compares
// it with one ('_' for '-', any case), append_header_name() writes it as a header
// ("X-Stainless-Os").
struct RequestHeader {
    std::string_view name;
    std::string_view value;
};
using RequestHeaders = std::vector<RequestHeader>;

struct Request {
    std::string method;
    std::string path;    // raw (still percent-encoded), mount prefix removed: "/v1/models"
    std::string query;   // raw, without '?'
    std::string mount;   // the mount prefix removed from the path ("" when none)
    RequestHeaders headers;  // every HTTP_* param plus CONTENT_TYPE
    // Where the headers' views point once keep_own_headers() has run: one block, which a
    // move leaves in place (a request is moved, never copied); none when no header is kept.
    std::unique_ptr<char[]> header_bytes;
    long long content_length = -1;  // -1: unknown (chunked body or none announced)
    bool has_body = false;
    // The web server drops the request by itself when its client leaves (nginx closes
    // the FastCGI connection at once); others (lighttpd, Apache) notice only when they
    // next write, so idle streams get heartbeats.
    bool server_notices_clients_leaving = false;
    std::string remote_address;  // REMOTE_ADDR: the client as the web server saw it
    // The first param no web server sends (empty: none): a name or value with CR or LF,
    // which could add an upstream header, a target with spaces or control bytes, or a
    // CONTENT_LENGTH that is not a number.
    std::string malformed_param;
};

// `plain`: the caller knows no param's name or value holds CR, LF or NUL (one scan of them
// all, FastCgiInput::params_plain): none is looked at again.
Request request_from_params(const CgiParams& params, const Config& config, bool plain = false);

// The request's headers copied out of the params into one room of the request's own, their
// views moved there: the params (the web server's whole set, 1.5 KiB and more) can then go
// back at once, and a stream that lasts minutes holds only its headers' bytes.
void keep_own_headers(Request& request);

// "NAME=value" strings (the environment of a CGI call) as params that
// point into them: they must outlive the params.
CgiParams params_from_envp(char** envp);

// First header with that name (case-insensitive), or nullptr.
const std::string* find_header(const Headers& headers, std::string_view name);
// The same among a request's headers, whose names are their params' ('_' for '-').
const std::string_view* find_header(const RequestHeaders& headers, std::string_view name);

// Whether a request header's name is `name`: "X_STAINLESS_OS" is "x-stainless-os".
bool header_names_match(std::string_view request_name, std::string_view name);
// "X_STAINLESS_OS" (or "x-stainless-os") as a header's name: "X-Stainless-Os".
void append_header_name(std::string& out, std::string_view request_name);
// "HTTP_X_STAINLESS_OS" -> "X-Stainless-Os"
std::string header_name_from_param(std::string_view param);

// Removes the scheme://authority of an absolute-form target and splits off the query.
void split_request_target(std::string_view target, std::string& path, std::string& query);

// Removes the mount prefix: the configured one, or else whatever precedes the first
// "/v1" segment (so /openai-proxy/v1/models routes like /v1/models with no setting).
std::string strip_mount_prefix(const std::string& path, const std::string& configured_prefix);
