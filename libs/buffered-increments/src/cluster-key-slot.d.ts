// cluster-key-slot (the slot function ioredis itself uses) ships no type declarations.
declare module 'cluster-key-slot' {
  export default function calculateSlot(key: string | Buffer): number;
}
