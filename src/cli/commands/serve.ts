/** `bundlegate serve --config FILE`: run the gateway until SIGINT or SIGTERM, then stop in order. */
import { startApp } from "../../app.js";
import { systemClock } from "../../clock.js";
import { loadConfigFile } from "../../config/load.js";
import { isBundlegateError } from "../../errors.js";
import { createLogger } from "../../logging.js";
import { type CliIo, EXIT_OK, EXIT_REJECTED, EXIT_USAGE } from "../io.js";

export async function serve(options: { config: string }, io: CliIo): Promise<number> {
  let config: Awaited<ReturnType<typeof loadConfigFile>>;
  try {
    config = await loadConfigFile(options.config, io.env);
  } catch (error) {
    if (!isBundlegateError(error)) throw error;
    io.stderr(`${error.code}: ${error.message}\n`);
    return error.code === "ERR_CONFIG_UNREADABLE" ? EXIT_USAGE : EXIT_REJECTED;
  }
  const logger = createLogger({ level: config.logLevel });
  let app: Awaited<ReturnType<typeof startApp>>;
  try {
    app = await startApp(config, { logger, clock: systemClock });
  } catch (error) {
    const code = isBundlegateError(error) ? error.code : "ERR_START";
    logger.fatal({ code, err: error instanceof Error ? error.message : String(error) }, "bundlegate could not start");
    io.stderr(`${code}: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_REJECTED;
  }
  const signal = await io.waitForShutdown();
  logger.info({ signal }, "stopping");
  await app.stop();
  return EXIT_OK;
}
