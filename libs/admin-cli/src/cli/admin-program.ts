import { INestApplicationContext } from '@nestjs/common';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { BufferAdmin, UnknownBufferError } from '../buffers/buffer-admin';
import { QueueAdmin } from '../queues/queue-admin';
import { TimerAdmin } from '../timers/timer-admin';
import { CommandResult, count, duration, table } from './output';
import { messageOf } from './error-message';

export interface AdminCliOptions {
  /** Builds the Nest application context the commands run in (connections, buffers, queues, timers). */
  createContext: () => Promise<INestApplicationContext>;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

/** Exit codes: the command did what it was asked; it could not (a server, a name); it was asked wrongly. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A command that cannot run as asked (a refused name, a missing --yes): exit code 2. */
class UsageError extends Error {}

interface Services {
  buffers: BufferAdmin;
  queues: QueueAdmin;
  timers: TimerAdmin;
}

const positiveInteger = (value: string): number => {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) throw new InvalidArgumentError('must be a whole number, 1 or more');
  return parsed;
};

/**
 * `bufferq`: an operator's commands against the running system's Redis and MongoDB. Returns the exit
 * code. The application context is built only when a command runs (`--help` needs no server) and is
 * closed before returning.
 */
export async function runAdminCli(argv: string[], options: AdminCliOptions): Promise<number> {
  const stdout = options.stdout ?? ((text: string) => process.stdout.write(text));
  const stderr = options.stderr ?? ((text: string) => process.stderr.write(text));
  let context: INestApplicationContext | undefined;
  let json = false;

  const services = async (): Promise<Services> => {
    context = await options.createContext();
    return { buffers: context.get(BufferAdmin), queues: context.get(QueueAdmin), timers: context.get(TimerAdmin) };
  };

  /** Wraps a command: `--json` on it, and its result printed the way asked. */
  const action =
    (run: (services: Services, ...args: never[]) => Promise<CommandResult>) =>
    async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      json = Boolean(command.opts().json);
      const result = await run(await services(), ...(args.slice(0, -1) as never[]));
      stdout(json ? `${JSON.stringify(result.json, null, 2)}\n` : `${result.text}\n`);
    };

  const program = buildProgram(action);
  program.exitOverride().configureOutput({ writeOut: stdout, writeErr: stderr });
  for (const command of allCommands(program))
    command.exitOverride().configureOutput({ writeOut: stdout, writeErr: stderr });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    const code = error instanceof UsageError ? EXIT.usage : EXIT.failed;
    stderr(json ? `${JSON.stringify({ error: messageOf(error) })}\n` : `bufferq: ${messageOf(error)}\n`);
    return code;
  } finally {
    await context?.close().catch(() => undefined);
  }
}

type Action = (
  run: (services: Services, ...args: never[]) => Promise<CommandResult>,
) => (...args: unknown[]) => Promise<void>;

function buildProgram(action: Action): Command {
  const program = new Command('bufferq')
    .description(
      'Operate a bufferq deployment: buffers, dead letters, timers and queues.\n' +
        'Connects with the same environment as the api and the worker (REDIS_URL, MONGO_URL, MONGO_DB, ...).',
    )
    .showHelpAfterError('(add --help for usage)')
    .helpCommand(false);

  program
    .command('stats')
    .description('buffered fields, oldest pending update and dead letters per buffered collection')
    .option('--json', 'print JSON')
    .action(
      action(async ({ buffers }) => {
        const stats = await buffers.stats();
        return {
          json: stats,
          text: table(
            ['collection', 'buffered fields', 'oldest pending', 'dead letters'],
            stats.map((s) => [
              s.buffer,
              s.bufferedFields,
              s.bufferedFields ? duration(s.oldestPendingAgeMs) : '-',
              s.deadLetters,
            ]),
          ),
        };
      }),
    );

  program
    .command('flush')
    .description('flush one buffered collection into MongoDB now and print what it wrote')
    .argument('<collection>', 'the buffered collection (or its namespace, for a collection with several buffers)')
    .option('--json', 'print JSON')
    .action(
      action(async ({ buffers }, collection: string) => {
        const report = await named(() => buffers.flush(collection));
        return {
          json: { collection, ...report },
          text:
            `${collection}: flushed ${count(report.fields)} fields into ${count(report.documents)} documents ` +
            `in ${count(report.batches)} batches (${count(report.recoveredBatches)} recovered), ` +
            `${count(report.deadLetters)} dead letters, ${duration(report.durationMs)}`,
        };
      }),
    );

  const deadLetters = program
    .command('dead-letters')
    .description('updates MongoDB refused for good: list, replay into the buffer, or drop')
    .helpCommand(false);
  deadLetters
    .command('list')
    .description('list the oldest dead letters of a buffered collection')
    .argument('<collection>', 'the buffered collection')
    .option('--limit <n>', 'most letters to list', positiveInteger, 100)
    .option('--json', 'print JSON (with each letter’s buffered fields)')
    .action(
      action(async ({ buffers }, collection: string, options: { limit: number }) => {
        const letters = await named(() => buffers.deadLetters(collection, options.limit));
        return {
          json: letters,
          text: letters.length
            ? table(
                ['document', 'fields', 'batch', 'error'],
                letters.map((letter) => [
                  letter.documentId,
                  Object.keys(letter.fields).length,
                  letter.batchId,
                  letter.error,
                ]),
              )
            : `${collection}: no dead letters`,
        };
      }),
    );
  deadLetters
    .command('replay')
    .description('put dead letters back into the buffer (after fixing their cause); the next flush applies them')
    .argument('<collection>', 'the buffered collection')
    .option('--limit <n>', 'most letters to replay', positiveInteger, 1_000)
    .option('--json', 'print JSON')
    .action(
      action(async ({ buffers }, collection: string, options: { limit: number }) => {
        const replayed = await named(() => buffers.replayDeadLetters(collection, options.limit));
        return {
          json: { collection, replayed },
          text: `${collection}: ${count(replayed)} dead letters back in the buffer`,
        };
      }),
    );
  deadLetters
    .command('drop')
    .description('drop every dead letter of a buffered collection (cannot be undone)')
    .argument('<collection>', 'the buffered collection')
    .option('--yes', 'confirm: the dropped updates are gone for good')
    .option('--json', 'print JSON')
    .action(
      action(async ({ buffers }, collection: string, options: { yes?: boolean }) => {
        if (!options.yes)
          throw new UsageError(`dropping the dead letters of ${collection} cannot be undone: add --yes`);
        const dropped = await named(() => buffers.dropDeadLetters(collection));
        return { json: { collection, dropped }, text: `${collection}: dropped ${count(dropped)} dead letters` };
      }),
    );

  const timers = program
    .command('timers')
    .description('webhook timers: counts, and sending failed timers again')
    .helpCommand(false);
  timers
    .command('stats')
    .description('timers per status (every tenant) and the schedule in Redis')
    .option('--json', 'print JSON')
    .action(
      action(async ({ timers }) => {
        const { byStatus, schedule } = await timers.stats();
        return {
          json: { byStatus, schedule },
          text: [
            table(['status', 'timers'], Object.entries(byStatus)),
            '',
            table(
              ['schedule', 'timers'],
              [
                ['scheduled', schedule.scheduled],
                ['overdue', schedule.overdue],
                ['claimed', schedule.claimed],
                ['armed', schedule.armed],
              ],
            ),
            `most overdue: ${schedule.overdue ? duration(schedule.oldestOverdueMs) : '-'}`,
          ].join('\n'),
        };
      }),
    );
  timers
    .command('retry-failed')
    .description('send failed timers again now, with a fresh attempt budget (every tenant, oldest first)')
    .option('--limit <n>', 'most timers to retry', positiveInteger, 1_000)
    .option('--json', 'print JSON')
    .action(
      action(async ({ timers }, options: { limit: number }) => {
        const ids = await timers.retryFailed(options.limit);
        return { json: { retried: ids.length, ids }, text: `${count(ids.length)} failed timers scheduled again` };
      }),
    );

  program
    .command('queues')
    .description('jobs per state in every BullMQ queue the system uses')
    .option('--json', 'print JSON')
    .action(
      action(async ({ queues }) => {
        const depths = await queues.depths();
        return {
          json: depths,
          text: table(
            ['queue', 'prefix', 'waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed', 'paused'],
            depths.map((d) => [
              d.queue,
              d.prefix,
              d.waiting,
              d.active,
              d.delayed,
              d.prioritized,
              d.failed,
              d.completed,
              d.paused ? 'yes' : 'no',
            ]),
          ),
        };
      }),
    );
  return program;
}

/** A name the system does not know is the caller's mistake, not a failure. */
async function named<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof UnknownBufferError) throw new UsageError(error.message);
    throw error;
  }
}

function allCommands(command: Command): Command[] {
  return command.commands.flatMap((sub) => [sub, ...allCommands(sub)]);
}
