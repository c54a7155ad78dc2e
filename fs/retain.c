/*
 * retain.c - the retention settings in force on a mount.
 *
 * The store keeps its settings (core/policy.c); mount options of the same
 * names override them for the life of the mount.  Every setting passes
 * through its text form (keep_policy_get, keep_policy_set), so merging
 * needs no knowledge of the fields.
 */
#include <pthread.h>
#include <stdio.h>
#include <syslog.h>

#include "kfs_i.h"

int kfs_policy_reload(struct kfs *fs)
{
	struct keep_policy p;
	char v[64];
	int rc = keep_policy_load(fs->store, &p);

	if (rc) {
		keep_log(LOG_ERR, "cannot read the store's settings: %s",
			 keep_strerror(rc));
		return rc;
	}
	for (int i = 0; keep_policy_keys[i]; i++) {
		if (!(fs->cfg->policy_mask & (1u << i)))
			continue;
		keep_policy_get(&fs->cfg->policy, keep_policy_keys[i], v,
				sizeof(v));
		keep_policy_set(&p, keep_policy_keys[i], v, NULL, 0);
	}
	pthread_mutex_lock(&fs->policy_mu);
	fs->policy = p;
	pthread_mutex_unlock(&fs->policy_mu);
	return 0;
}

void kfs_policy_get(struct kfs *fs, struct keep_policy *out)
{
	pthread_mutex_lock(&fs->policy_mu);
	*out = fs->policy;
	pthread_mutex_unlock(&fs->policy_mu);
}
