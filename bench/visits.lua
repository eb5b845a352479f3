-- wrk script for POST /visits (scripts/bench.sh).
--   wrk -t2 -c16 -d10s -s bench/visits.lua http://127.0.0.1:PORT/visits -- TOKEN [NPATIENTS [THREADS]]
-- Every request records a visit for a random patient 1..NPATIENTS (default
-- 1000). TOKEN may be @FILE: a token a line, used in turn (thread t of
-- THREADS, the same as wrk -t, takes lines t, t + THREADS, ...), so that a
-- token comes back only after all the others. Answers are counted by status
-- in each thread; done() prints one machine-readable line, "BENCH ...", that
-- scripts/bench.sh parses.

-- setup(), response(), done() and the counters: bench/count.lua, beside this file.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "count.lua")

function init(args)
   npatients = tonumber(args[2]) or 1000
   nthreads = tonumber(args[3]) or 1
   math.randomseed(os.time() * 16 + tindex)
   hdrs = {
      ["Authorization"] = "Bearer " .. args[1],
      ["Content-Type"] = "application/json",
   }
   pool = nil
   if args[1]:sub(1, 1) == "@" then
      pool = {}
      for line in io.lines(args[1]:sub(2)) do table.insert(pool, "Bearer " .. line) end
      next_tok = tindex + 1
   end
   count_reset()
end

function request()
   if pool then
      hdrs["Authorization"] = pool[next_tok]
      next_tok = next_tok + nthreads
      if next_tok > #pool then next_tok = next_tok - #pool end
   end
   local body = '{"patient": ' .. math.random(1, npatients) ..
      ', "status": "started", "visit_date": "21 November 2026 14:05"}'
   return wrk.format("POST", nil, hdrs, body)
end
