import type { Command } from 'commander';
import type { CliIo } from '../io.ts';
import { registerConnectors } from './connectors.ts';
import { registerRun } from './run.ts';
import { registerValidate } from './validate.ts';
import { registerEvents } from './events.ts';
import { registerKeys } from './keys.ts';
import { registerDecode } from './decode.ts';
import { registerVerify } from './verify.ts';
import { registerOkta } from './okta.ts';
import { registerDlq } from './dlq.ts';
import { registerSimulate } from './simulate.ts';
import { registerDevices } from './devices.ts';
import { registerNew } from './new.ts';
import { registerCheckpoints } from './checkpoints.ts';

/**
 * Each file in this folder adds its commands to the program. Action handlers set their
 * result through the returned promise: throw CliExit for a non-zero exit.
 */
export type CommandRegistrar = (program: Command, io: CliIo) => void;

export const registrars: CommandRegistrar[] = [
  registerRun,
  registerValidate,
  registerConnectors,
  registerEvents,
  registerKeys,
  registerDecode,
  registerVerify,
  registerOkta,
  registerNew,
  registerDlq,
  registerSimulate,
  registerDevices,
  registerCheckpoints,
];
