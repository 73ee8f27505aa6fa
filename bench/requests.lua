-- wrk script: cycle through request lines "METHOD<TAB>PATH<TAB>BODY" from $BENCH_REQUESTS,
-- each thread from its own offset, and print a JSON summary line for bench/run.py.
local lines = {}
local index = 0

-- Each request comes from its own client address (X-Forwarded-For, read through the
-- service's PROXY_COUNT): a hash of the line picks it in 10.0.0.0/8, so the same comment
-- always comes from the same address and limits and flood control are evaluated, not
-- skipped as for the trusted loopback.
local function client_address(line)
  local h = 5381
  for i = 1, #line do h = (h * 33 + line:byte(i)) % 16777216 end
  return string.format("10.%d.%d.%d", math.floor(h / 65536), math.floor(h / 256) % 256, h % 256)
end

local function load()
  local path = os.getenv("BENCH_REQUESTS")
  for line in io.lines(path) do
    local method, target, body = line:match("^([^\t]+)\t([^\t]+)\t?(.*)$")
    if method then
      local headers = {["Content-Type"] = "application/json", ["User-Agent"] = "bench-wrk/1",
                       ["X-Forwarded-For"] = client_address(line)}
      if body == "" then body = nil end
      lines[#lines + 1] = wrk.format(method, target, headers, body)
    end
  end
end

local thread_count = 0
function setup(thread)
  thread:set("offset", thread_count * 7919)
  thread_count = thread_count + 1
end

function init(args)
  load()
  index = (offset or 0) % #lines
end

function request()
  index = index % #lines + 1
  return lines[index]
end

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
