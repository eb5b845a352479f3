-- wrk script for POST /visits (bench/bench.pl).
--   wrk -t2 -c16 -d10s -s bench/visits.lua http://127.0.0.1:PORT/visits -- TOKEN [NPATIENTS [THREADS]]
-- Every request records a visit for a random patient 1..NPATIENTS (default
-- 1000). TOKEN may be @FILE: a token a line, used in turn (auth_init in
-- bench/count.lua; THREADS is wrk's -t). Answers are counted by status
-- in each thread; done() prints one machine-readable line, "BENCH ...", that
-- bench/bench.pl parses.

-- setup(), response(), done() and the counters: bench/count.lua, beside this file.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "count.lua")

function init(args)
   npatients = tonumber(args[2]) or 1000
   nthreads = tonumber(args[3]) or 1
   math.randomseed(os.time() * 16 + tindex)
   auth_init(args[1], nthreads)
   count_reset()
end

function request()
   auth_next()
   local body = '{"patient": ' .. math.random(1, npatients) ..
      ', "status": "started", "visit_date": "21 November 2026 14:05"}'
   return wrk.format("POST", nil, hdrs, body)
end
