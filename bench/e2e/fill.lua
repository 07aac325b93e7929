-- fill.lua: wrk script that creates GROUPS groups once (groups 0..GROUPS-1 in order, body as in push.lua) and
-- then stops, so the store holds GROUPS*10 series before push.lua measures. Arguments after "--":
-- GROUPS BODY_FILE MARKER_FILE. Unlike push.lua it counts responses (response() callback), slower per request but
-- it knows when it is done. wrk's main thread sleeps for the whole -d duration even after every worker thread
-- stopped, so the script also creates MARKER_FILE when done; the driver waits for it and then stops wrk.
local groups, body, sent, answered, marker = 100, nil, 0, 0, nil
local host = "127.0.0.1"

function init(args)
    groups = tonumber(args[1] or "100")
    local path = args[2] or "bench/payloads/push-646.txt"
    marker = args[3]
    local f = assert(io.open(path, "rb"))
    body = f:read("*a")
    f:close()
    host = wrk.host .. ":" .. wrk.port
end

local tail
function request()
    if not tail then
        tail = " HTTP/1.1\r\nHost: " .. host .. "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " ..
               #body .. "\r\n\r\n" .. body
    end
    -- Past the last group the remaining in-flight connections re-push group 0..: harmless replacements.
    local i = sent % groups
    sent = sent + 1
    return "PUT /metrics/job/j" .. math.floor(i / 100) .. "/instance/i" .. (i % 100) .. tail
end

function response(status, headers, resp_body)
    answered = answered + 1
    -- Each connection has at most one request in flight: once GROUPS+32 answers are in, every group was created
    -- (the driver still counts the groups afterwards).
    if answered == groups + 32 then
        if marker then
            local m = assert(io.open(marker, "w"))
            m:close()
        end
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    io.write(string.format("FILL requests=%d duration_us=%d status=%d\n", summary.requests, summary.duration,
        summary.errors.status))
end
