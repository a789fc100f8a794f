/** What a command may touch, so commands can be run in-process by tests. */
export interface CommandIo {
  readonly env: NodeJS.ProcessEnv;
  stdout(text: string): void;
  stderr(text: string): void;
}

/** The exit codes (README: The CLI): 0 ok, 1 error, 2 timeout or not found. */
export const ExitCode = { Ok: 0, Error: 1, TimeoutOrNotFound: 2 } as const;

export const processIo: CommandIo = {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};
