// Loaded before every test file: inversify needs the reflect-metadata polyfill.
import 'reflect-metadata';
