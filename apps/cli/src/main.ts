import { runAdminCli } from '@bufferq/admin-cli';

// The application is imported only when a command runs: `--help` works with no server and any environment.
runAdminCli(process.argv.slice(2), {
  createContext: async () => (await import('./cli-app')).createCliContext(),
}).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('bufferq failed:', error);
    process.exit(1);
  },
);
