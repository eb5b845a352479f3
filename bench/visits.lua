-- wrk script for POST /visits (scripts/bench.sh).
--   wrk -t2 -c16 -d10s -s bench/visits.lua http://127.0.0.1:PORT/visits -- TOKEN [NPATIENTS [THREADS]]
-- Every request records a visit for a random patient 1..NPATIENTS (default
-- 1000). TOKEN may be @FILE: a token a line, used in turn (thread t of
-- THREADS, the same as wrk -t, takes lines t, t + THREADS, ...), so that a
-- token comes back only after all the others. Answers are counted by status
-- in each thread; done() prints one machine-readable line, "BENCH ...", that
-- scripts/bench.sh parses.

local threads = {}

function setup(thread)
   thread:set("tindex", #threads)
   table.insert(threads, thread)
end

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
   ok, other, codes = 0, 0, {}
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

function response(status)
   if status >= 200 and status < 300 then
      ok = ok + 1
   else
      other = other + 1
      codes[status] = (codes[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local ok_sum, other_sum, all = 0, 0, {}
   for _, t in ipairs(threads) do
      ok_sum = ok_sum + t:get("ok")
      other_sum = other_sum + t:get("other")
      for k, v in pairs(t:get("codes")) do all[k] = (all[k] or 0) + v end
   end
   local list = {}
   for k, v in pairs(all) do table.insert(list, k .. ":" .. v) end
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f ok=%d non2xx=%d codes=%s sockerr=%d/%d/%d/%d maxn=0\n",
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, ok_sum, other_sum,
      #list > 0 and table.concat(list, ",") or "-",
      e.connect, e.read, e.write, e.timeout))
end
