// ioredis Cluster with scaleReads "slave" against a hypercache cluster: writes N keys, reads them back
// from replicas, prints {"written", "read_ok", "wrong", "errors", "slaves"} as one JSON line.
// Usage: node ioredis_scale_reads.js <port> <count>
const Redis = require("ioredis");

async function main() {
  const [port, count] = [Number(process.argv[2]), Number(process.argv[3] || 200)];
  const cluster = new Redis.Cluster([{ host: "127.0.0.1", port }], {
    scaleReads: "slave",
    maxRedirections: 16,
    redisOptions: { connectTimeout: 5000 },
  });
  const result = { written: 0, read_ok: 0, wrong: 0, errors: [], slaves: 0 };
  try {
    for (let i = 0; i < count; i++) {
      await cluster.set(`io:${i}`, `v${i}`);
      result.written++;
    }
    for (let i = 0; i < count; i++) {
      try {
        const value = await cluster.get(`io:${i}`);
        if (value === `v${i}`) result.read_ok++; else result.wrong++;
      } catch (error) {
        if (result.errors.length < 5) result.errors.push(String(error.message || error));
      }
    }
    result.slaves = cluster.nodes("slave").length;
  } catch (error) {
    result.errors.push(String(error.message || error));
  }
  console.log(JSON.stringify(result));
  cluster.disconnect();
}

main();
