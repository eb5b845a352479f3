-- wrk script for POST /patients/add_and_link?uid=... (bench/bench.pl).
--   wrk -t2 -c16 -d10s -s bench/link.lua 'http://127.0.0.1:PORT/patients/add_and_link?uid=doc-bench' \
--       -- TOKEN RUN CAP [THREADS]
-- Every request links a new patient to a distinct free appointment. Thread t
-- of run RUN counts n = 1, 2, ... and uses appointment
--   printf("%012x%012x", 16 + 16*RUN + t, n)
-- which bench/fixtures.sql created (n up to CAP) for doctor doc-bench. Runs
-- and threads never share an id. done() prints the "BENCH ..." line, with the
-- highest n used (it must stay <= CAP, else requests answer 404). TOKEN may
-- be @FILE, a token a line used in turn (auth_init in bench/count.lua;
-- THREADS is wrk's -t).

-- setup(), response(), done() and the counters: bench/count.lua, beside this file.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "count.lua")

function init(args)
   slot = 16 + 16 * tonumber(args[2]) + tindex
   cap = tonumber(args[3])
   auth_init(args[1], tonumber(args[4]))
   n = 0
   count_reset()
end

function request()
   n = n + 1
   auth_next()
   local body = string.format('{"appointment_id": "%012x%012x", "firstName": "Jane", ' ..
      '"lastName": "Smith", "dateOfBirth": "1990-03-20"}', slot, n)
   return wrk.format("POST", nil, hdrs, body)
end

function done(summary, latency, requests)
   local maxn, cap = 0, 0
   for _, t in ipairs(threads) do
      maxn = math.max(maxn, t:get("n"))
      cap = t:get("cap")
   end
   report(summary, latency, maxn)
   if maxn > cap then
      io.write("BENCH-WARNING appointment ids ran past CAP: raise the fixtures\n")
   end
end
