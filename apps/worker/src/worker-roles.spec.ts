import { workerRolesSetting } from './worker-roles';

describe('WORKER_ROLES', () => {
  it('accepts all, one role, or a comma list of known roles', () => {
    for (const value of ['all', 'flush', 'timers, royalties', undefined]) {
      expect(workerRolesSetting.safeParse(value).success).toBe(true);
    }
  });

  it('refuses a role no lib provides, naming it', () => {
    const parsed = workerRolesSetting.safeParse('flush,mailer');
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0].message).toContain('mailer');
  });
});
