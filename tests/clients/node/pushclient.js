// Pushes to a Pushgateway with prom-client's Pushgateway class (version pinned in package.json) so that Ferry's
// client-library suite can check the result on the gateway. One step per call; the driver
// (tests/clients/run_clients.py) knows what each step must leave on the gateway. Any error exits non-zero.
//
// Usage: node pushclient.js http://127.0.0.1:PORT STEP
//   push      PUT    job "node_job", groupings {lang: "gö x", env: ""}: counter, gauge, histogram, summary.
//                    prom-client sends no base64 form: values go through encodeURIComponent, so the empty value
//                    must be the last one (".../env/" is the group {env=""}; "//" in the middle would be cleaned
//                    by a 301 that prom-client does not follow, and treats as success).
//   add       POST   same group: one more gauge; the families pushed before stay
//   replace   PUT    job "node_job", groupings {env: "prod"} twice with different families: only the second stays
//   delete    DELETE the "push" group
//   slash     PUT    groupings {path: "a/b"}: encodeURIComponent gives "a%2Fb", which the gateway decodes into a
//                    path separator; prints the status and body of the rejection and exits 0 only if rejected
//   midempty  PUT    groupings {env: "", lang: "x"}: prints the status prom-client resolved with (a redirect)
'use strict';

const client = require('prom-client');

const JOB = 'node_job';
const GROUP = { lang: 'gö x', env: '' };

function gateway(url, reg) {
    return new client.Pushgateway(url, { timeout: 10000 }, reg);
}

async function stepPush(url) {
    const reg = new client.Registry();
    const c = new client.Counter({ name: 'node_requests_total', help: 'Requests seen.', labelNames: ['code'],
        registers: [reg] });
    c.inc({ code: '200' }, 7);
    c.inc({ code: '500' }, 2);
    new client.Gauge({ name: 'node_temperature_celsius', help: 'Temperature.', registers: [reg] }).set(-3.5);
    const h = new client.Histogram({ name: 'node_latency_seconds', help: 'Latency.', buckets: [0.1, 1, 10],
        registers: [reg] });
    for (const v of [0.05, 0.5, 0.5, 5, 50]) h.observe(v);
    const s = new client.Summary({ name: 'node_size_bytes', help: 'Sizes.', percentiles: [0.5],
        registers: [reg] });
    for (const v of [1, 2, 3]) s.observe(v);
    await gateway(url, reg).push({ jobName: JOB, groupings: GROUP });
}

async function stepAdd(url) {
    const reg = new client.Registry();
    new client.Gauge({ name: 'node_added', help: 'Added by POST.', registers: [reg] }).set(42);
    await gateway(url, reg).pushAdd({ jobName: JOB, groupings: GROUP });
}

async function stepReplace(url) {
    let reg = new client.Registry();
    new client.Gauge({ name: 'node_replaced', help: 'Replaced by the second PUT.', registers: [reg] }).set(1);
    await gateway(url, reg).push({ jobName: JOB, groupings: { env: 'prod' } });
    reg = new client.Registry();
    new client.Gauge({ name: 'node_replacement', help: 'The second PUT.', registers: [reg] }).set(2);
    await gateway(url, reg).push({ jobName: JOB, groupings: { env: 'prod' } });
}

async function stepDelete(url) {
    await gateway(url, new client.Registry()).delete({ jobName: JOB, groupings: GROUP });
}

async function stepSlash(url) {
    const reg = new client.Registry();
    new client.Gauge({ name: 'node_slash', help: 'Never stored.', registers: [reg] }).set(1);
    try {
        await gateway(url, reg).push({ jobName: JOB, groupings: { path: 'a/b' } });
    } catch (err) {
        console.log(err.message);
        return;
    }
    throw new Error('push with a "/" in a grouping value was accepted');
}

async function stepMidEmpty(url) {
    const reg = new client.Registry();
    new client.Gauge({ name: 'node_midempty', help: 'Redirected.', registers: [reg] }).set(1);
    const { resp } = await gateway(url, reg).push({ jobName: JOB, groupings: { env: '', lang: 'x' } });
    console.log(String(resp.statusCode));
}

const steps = { push: stepPush, add: stepAdd, replace: stepReplace, delete: stepDelete, slash: stepSlash,
    midempty: stepMidEmpty };

async function main() {
    if (process.argv.length !== 4 || !(process.argv[3] in steps)) {
        console.error('usage: node pushclient.js URL ' + Object.keys(steps).join('|'));
        process.exit(2);
    }
    await steps[process.argv[3]](process.argv[2]);
}

main().catch(err => {
    console.error('pushclient.js:', err.message);
    process.exit(1);
});
