-- Shared by the wrk scripts of bench/bench.pl (loaded with dofile): each
-- thread counts its answers by status; report() sums the threads and prints
-- the one machine-readable "BENCH ..." line that bench/bench.pl parses.

threads = {}

function setup(thread)
   thread:set("tindex", #threads)
   table.insert(threads, thread)
end

-- The Authorization header: TOKEN, or with @FILE a token a line, used in
-- turn (thread t of nthreads, the same as wrk -t, takes lines t, t +
-- nthreads, ...), so that a token comes back only after all the others:
-- every request a token-cache miss. With %FILE each line is "TOKEN PROOF":
-- Authorization: DPoP TOKEN and DPoP: PROOF, each proof sent once (the file
-- must hold more lines than the run sends). auth_next() before each request.
function auth_init(arg, nthreads)
   hdrs = {
      ["Authorization"] = "Bearer " .. arg,
      ["Content-Type"] = "application/json",
   }
   pool = nil
   if arg:sub(1, 1) == "@" or arg:sub(1, 1) == "%" then
      pool, proofs = {}, arg:sub(1, 1) == "%" and {} or nil
      for line in io.lines(arg:sub(2)) do
         if proofs then
            local tok, proof = line:match("^(%S+) (%S+)$")
            table.insert(pool, "DPoP " .. tok)
            table.insert(proofs, proof)
         else
            table.insert(pool, "Bearer " .. line)
         end
      end
      pool_step = nthreads or 1
      next_tok = tindex + 1
   end
end

function auth_next()
   if pool then
      hdrs["Authorization"] = pool[next_tok]
      if proofs then hdrs["DPoP"] = proofs[next_tok] end
      next_tok = next_tok + pool_step
      if next_tok > #pool then next_tok = next_tok - #pool end
   end
end

function count_reset()
   ok, other, codes = 0, 0, {}
end

function response(status)
   if status >= 200 and status < 300 then
      ok = ok + 1
   else
      other = other + 1
      codes[status] = (codes[status] or 0) + 1
   end
end

-- The sum over all threads of a per-thread counter, and of a per-thread
-- table of counters (in done()).
function thread_sum(name)
   local s = 0
   for _, t in ipairs(threads) do s = s + t:get(name) end
   return s
end

function thread_sum_table(name)
   local all = {}
   for _, t in ipairs(threads) do
      for k, v in pairs(t:get(name)) do all[k] = (all[k] or 0) + v end
   end
   return all
end

-- maxn: the highest per-thread counter a script reports (link.lua), else 0.
function report(summary, latency, maxn)
   local ok_sum, other_sum, all = thread_sum("ok"), thread_sum("other"), thread_sum_table("codes")
   local list = {}
   for k, v in pairs(all) do table.insert(list, k .. ":" .. v) end
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f ok=%d non2xx=%d codes=%s sockerr=%d/%d/%d/%d maxn=%d\n",
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, ok_sum, other_sum,
      #list > 0 and table.concat(list, ",") or "-",
      e.connect, e.read, e.write, e.timeout, maxn))
end

function done(summary, latency, requests)
   report(summary, latency, 0)
end
