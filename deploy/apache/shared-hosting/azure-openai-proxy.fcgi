#!/bin/sh
# Starts the proxy with its settings. Apache runs this file as FastCGI (mod_fcgid) or
# as CGI; exec hands it the socket or the request unchanged.
dir=$(dirname "$0")
set -a
. "$dir/settings.env"
set +a
exec "$dir/azure-openai-proxy"
