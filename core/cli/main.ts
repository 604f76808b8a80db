import 'reflect-metadata';
import { injectable, inject, Container } from 'inversify';
const T = Symbol.for('x');
@injectable()
class A { constructor(@inject(T) readonly v: number) {} }
export async function main(argv: string[]): Promise<number> {
  const c = new Container(); c.bind(T).toConstantValue(42); c.bind(A).toSelf();
  console.log('ok', c.get(A).v, argv.slice(2));
  return 0;
}
