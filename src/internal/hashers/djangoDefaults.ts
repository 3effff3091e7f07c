/**
 * Django's hasher parameters (6.0, the most any release asks for): `PasswordHasher.defaults` is
 * made of them, and the work ceiling measures stored hashes against them. @internal
 */
export const djangoDefaults = {
  pbkdf2: { iterations: 1_200_000 },
  argon2: { timeCost: 2, memoryCost: 102_400, parallelism: 8, hashLength: 32 },
  bcrypt: { rounds: 12, longPasswords: "reject" },
  scrypt: { workFactor: 2 ** 14, blockSize: 8, parallelism: 5, maxmem: 32 * 1024 * 1024 }
} as const
