-- wrk script of the farm check d (t/farm/40_graceful.t): a distinct POST per
-- request, every request and answer logged per thread; per-thread counters
-- gathered in done().
--   wrk ... -s bench/farm-graceful.lua http://127.0.0.1:PORT/ -- ROUTE LOGDIR TOKEN UID
-- ROUTE visits or link; logs LOGDIR/wrk-ROUTE-THREAD.log (S tag / R status tag id).
-- setup() and thread_sum(): bench/count.lua, beside this file; response()
-- and done() are this script's own.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "count.lua")

function init(args)
    tid = tindex + 1
    route, logdir, token, uid = args[1], args[2], args[3], args[4]
    log = io.open(logdir .. "/wrk-" .. route .. "-" .. tid .. ".log", "w")
    log:setvbuf("line")
    sent, got, statuses = 0, 0, {}
    hdrs = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
    -- wrk calls request() once on the first thread before it starts, only to
    -- count pipelined requests (script_verify_request); that one is never sent.
    verifying = (tid == 1)
end
function request()
    if verifying then
        verifying = false
        return wrk.format("POST", "/never-sent", hdrs, "{}")
    end
    local tag, body, path
    if route == "visits" then
        tag = string.format("farm-d-%d-%d", tid, sent)
        body = '{"patient": 1750, "status": "' .. tag .. '"}'
        path = "/visits"
    else
        tag = string.format("d1%02x%020x", tid, sent)
        body = '{"appointment_id": "' .. tag .. '", "firstName": "Grace", "lastName": "' .. tag .. '"}'
        path = "/patients/add_and_link?uid=" .. uid
    end
    sent = sent + 1
    log:write("S ", tag, "\n")
    return wrk.format("POST", path, hdrs, body)
end
function response(status, headers, body)
    got = got + 1
    statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
    local tag, id = "-", "-"
    if status == 200 then
        if route == "visits" then
            id = string.match(body, '"id":%s*(%d+)') or "?"
            tag = string.match(body, '"status":%s*"([^"]*)"') or "?"
        else
            id = string.match(body, '"_id":%s*"(%x+)"') or "?"
            tag = string.match(body, '"lastName":%s*"(%x+)"') or "?"
        end
    end
    log:write("R ", status, " ", tag, " ", id, "\n")
end
function done(summary, latency, requests)
    io.write(string.format("LUA sent %d answered %d\n", thread_sum("sent"), thread_sum("got")))
    for k, v in pairs(thread_sum_table("statuses")) do io.write(string.format("LUA status %s %d\n", k, v)) end
    local e = summary.errors
    io.write(string.format("LUA errors connect %d read %d write %d timeout %d status %d\n",
                           e.connect, e.read, e.write, e.timeout, e.status))
end
