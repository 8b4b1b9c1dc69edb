'use strict';
// Readable logs for a person at a terminal: the apps write pino JSON lines (what log collectors want);
// `npm start` in development pipes each app's stdout through this. Colors follow the terminal
// (NO_COLOR / FORCE_COLOR respected). Lines that are not JSON pass through unchanged.

/** A writable stream printing the JSON log lines written to it as `[time] LEVEL: <app> [context] message`. */
function prettyLogStream(app, options = {}) {
  const pretty = require('pino-pretty');
  return pretty({
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,context',
    messageFormat: (log, messageKey) => `${app} ${log.context ? `[${log.context}] ` : ''}${log[messageKey]}`,
    // Written as they come, so nothing is lost when `npm start` exits right after a child's last line.
    sync: true,
    ...options,
  });
}

module.exports = { prettyLogStream };
