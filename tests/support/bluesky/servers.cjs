// A real AT Protocol PDS and its PLC directory, both on 127.0.0.1, for the tests.
//
// Started by tests/support/bluesky/harness.py, which passes everything through the
// environment:
//   TRACKER_NODE_MODULES  the cached node_modules folder (see `make node-deps`)
//   TRACKER_READY_FILE    where to write {"pds": url, "plc": url} once both listen
//   PDS_PORT, PDS_DATA_DIRECTORY, PDS_BLOBSTORE_DISK_LOCATION, ... the PDS's own
//                         variables, read the way its service entry reads them
// The PLC directory runs in this process on an in-memory database (or PostgreSQL at
// TRACKER_PLC_DB_URL, for its /export) and a port the kernel picks; the PDS needs a known port because its public URL is configured.
// Both servers call `app.listen(port)`, which binds every interface, so `listen`
// is wrapped to bind 127.0.0.1 only. The process ends when its stdin closes (the
// test process died) or on SIGTERM/SIGINT.
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { createRequire } = require('node:module')

const modules = process.env.TRACKER_NODE_MODULES
const readyFile = process.env.TRACKER_READY_FILE
if (!modules || !readyFile) {
  console.error('servers.cjs: TRACKER_NODE_MODULES and TRACKER_READY_FILE must be set')
  process.exit(2)
}
const load = createRequire(path.join(modules, 'noop.js'))
const pds = load('@atproto/pds')
const plc = load('@did-plc/server')

function loopbackOnly(app) {
  const listen = app.listen.bind(app)
  app.listen = (port) => listen(port, '127.0.0.1')
}

async function main() {
  // The in-memory database cannot export (its exportOps returns nothing): with
  // TRACKER_PLC_DB_URL the directory keeps its operations in that PostgreSQL database.
  let plcDb = plc.Database.mock()
  if (process.env.TRACKER_PLC_DB_URL) {
    plcDb = plc.Database.postgres({ url: process.env.TRACKER_PLC_DB_URL })
    await plcDb.migrateToLatestOrThrow()
  }
  const plcServer = plc.PlcServer.create({ db: plcDb, port: 0 })
  loopbackOnly(plcServer.app)
  const plcHttp = await plcServer.start()
  const plcUrl = `http://127.0.0.1:${plcHttp.address().port}`

  process.env.PDS_DID_PLC_URL = plcUrl
  const env = pds.readEnv()
  const server = await pds.PDS.create(pds.envToCfg(env), pds.envToSecrets(env))
  loopbackOnly(server.app)
  const pdsHttp = await server.start()
  const pdsUrl = `http://127.0.0.1:${pdsHttp.address().port}`

  let stopping = false
  const stop = async (code) => {
    if (stopping) return
    stopping = true
    try {
      await server.destroy()
      await plcServer.destroy()
    } catch (err) {
      console.error('servers.cjs: error while stopping:', err)
    }
    process.exit(code)
  }
  process.on('SIGTERM', () => stop(0))
  process.on('SIGINT', () => stop(0))
  process.stdin.on('end', () => stop(0))
  process.stdin.resume()

  const partial = `${readyFile}.partial`
  fs.writeFileSync(partial, JSON.stringify({ pds: pdsUrl, plc: plcUrl }))
  fs.renameSync(partial, readyFile)
}

main().catch((err) => {
  console.error('servers.cjs: start-up failed:', err && err.stack ? err.stack : err)
  process.exit(1)
})
