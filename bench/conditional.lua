-- wrk script of bench/conditional.py: GET $BENCH_PATH, with If-None-Match: $BENCH_IF_NONE_MATCH
-- when set (requests.lua builds its own headers, so wrk's -H would not reach its requests),
-- and the same JSON summary line as requests.lua.
wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH")
wrk.headers["User-Agent"] = "bench-wrk/1"
local tag = os.getenv("BENCH_IF_NONE_MATCH")
if tag and tag ~= "" then wrk.headers["If-None-Match"] = tag end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
