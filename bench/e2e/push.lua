-- push.lua: wrk script for the end-to-end push benchmark (scripts/bench-e2e.sh).
-- PUTs one body (default bench/payloads/push-646.txt) to /metrics/job/j<g/100>/instance/i<g%100>, g cycling over
-- GROUPS groups, so once every group exists the store size stays fixed (each push replaces a group of 10 series).
-- Arguments after "--": GROUPS [BODY_FILE [START]]. START offsets the cycle so successive runs do not replay the
-- same order. No response() callback on purpose: defining one makes wrk parse every response into Lua tables,
-- which lowers its ceiling; non-2xx answers still show up in wrk's summary (errors.status) and in done() below.
local groups, body, g = 100, nil, 0
local host = "127.0.0.1"

function init(args)
    groups = tonumber(args[1] or "100")
    local path = args[2] or "bench/payloads/push-646.txt"
    g = tonumber(args[3] or "0") % groups
    local f = assert(io.open(path, "rb"))
    body = f:read("*a")
    f:close()
    host = wrk.host .. ":" .. wrk.port
end

-- A single concatenation per request: cheaper in LuaJIT than wrk.format(), which builds a header table each time.
local tail
function request()
    if not tail then
        tail = " HTTP/1.1\r\nHost: " .. host .. "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " ..
               #body .. "\r\n\r\n" .. body
    end
    local i = g
    g = g + 1
    if g == groups then g = 0 end
    return "PUT /metrics/job/j" .. math.floor(i / 100) .. "/instance/i" .. (i % 100) .. tail
end

-- One machine-readable line for the driver script; latencies are in microseconds.
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("E2E requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
        e.connect, e.read, e.write, e.status, e.timeout))
end
