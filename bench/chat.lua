-- wrk script: a small chat completion, as an OpenAI client sends it.
-- BENCH_PATH and BENCH_MODEL come from the environment (bench/run.mjs sets them).
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-key"
wrk.headers["api-key"] = "bench-key"
wrk.body = '{"model":"' .. (os.getenv("BENCH_MODEL") or "gpt-4o") ..
  '","messages":[{"role":"user","content":"Say hello in five words."}],"max_tokens":32}'
