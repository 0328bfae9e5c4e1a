/**
 * Decorators store their metadata on the method function itself, so a wrapper must carry it
 * over (as nestjs-cls does), or routes, guards and Swagger docs declared above it would vanish.
 */
export function copyMethodMetadata(from: Function, to: Function): void {
  for (const key of Reflect.getOwnMetadataKeys(from)) {
    Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, from), to);
  }
  Object.defineProperty(to, 'name', { value: from.name, configurable: true });
}
