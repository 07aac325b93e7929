-- push-rr.lua: bench/e2e/push.lua spread over several servers, for scripts/bench-cluster.sh. Each wrk thread talks
-- to one server: thread i (1-based) to the i-th port of the environment variable FERRY_RR_PORTS (space-separated,
-- on 127.0.0.1; wrk's URL only gives the first), so `wrk -t3 -c33` puts 11 connections on each of three replicas.
-- Arguments after "--": GROUPS [BODY_FILE [START]], as in push.lua; thread i starts its cycle GROUPS*(i-1)/threads
-- further on, so the threads do not push the same group at the same moment on different replicas.
local ports, nthreads, made = {}, 0, 0
for p in string.gmatch(os.getenv("FERRY_RR_PORTS") or "", "%d+") do
    ports[#ports + 1] = p
end

function setup(thread)
    made = made + 1
    local port = ports[(made - 1) % #ports + 1]
    thread.addr = wrk.lookup("127.0.0.1", port)[1]
    thread:set("id", made)
    thread:set("port", port)
    thread:set("nthreads", #ports)
end

local groups, body, g = 100, nil, 0
local host = "127.0.0.1"

function init(args)
    groups = tonumber(args[1] or "100")
    local path = args[2] or "bench/payloads/push-646.txt"
    local id = tonumber(wrk.thread:get("id"))
    local n = tonumber(wrk.thread:get("nthreads"))
    g = (tonumber(args[3] or "0") + math.floor(groups * (id - 1) / n)) % groups
    local f = assert(io.open(path, "rb"))
    body = f:read("*a")
    f:close()
    host = "127.0.0.1:" .. wrk.thread:get("port")
end

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

-- The same line as push.lua (summed over the threads, latencies over all of them).
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("E2E requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
        e.connect, e.read, e.write, e.status, e.timeout))
end
