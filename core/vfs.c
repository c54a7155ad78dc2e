/*
 * vfs.c - the SQLite VFS the store's connections use (db_vfs): the
 * default one, but for truncates and syncs as notes 1-5 say.
 *
 * Design notes:
 *
 *  1. A checkpoint that copies the whole WAL sets the database file's
 *     size (xTruncate) and then syncs it, every time, even when the size
 *     is what it was.  On ext4 a truncate to the same size is not free:
 *     it still drops preallocated blocks, and so changes the inode (the
 *     orphan list) in a journal transaction, and the sync that follows
 *     has to wait for a commit of the file system journal, which in
 *     data=ordered mode writes out every other file's dirty data first.
 *     Seen with strace: ftruncate to the same size, then fdatasync of the
 *     database 42-70 ms while a collection ran (0.4 ms for the WAL just
 *     before it), with the store lock held (db.c note 2).  So xTruncate
 *     does nothing when the file already has that size.  A real change of
 *     size (an incremental vacuum giving pages back) still truncates.
 *  2. A connection can ask (DB_FCNTL_KEEP_SIZE) that its checkpoints
 *     never make the database file smaller either: a real truncate costs
 *     the same journal commit (and, on a file system mounted with
 *     discard, waits for the freed blocks' discards), 35-50 ms while a
 *     collection gives pages back, one truncate per step.  The writer
 *     connection asks this while the checkpoint thread runs, whose
 *     complete checkpoints then make the file smaller, with no lock of
 *     the store held.  A file longer than the database it holds is what
 *     a crash between a checkpoint's copy and its truncate leaves: SQLite
 *     goes by the page count in the database header and ignores the
 *     pages past it.
 *  3. A checkpoint syncs the database only when it copied the whole WAL
 *     as it is when the copy ends.  Under a steady load a commit always
 *     comes during the copy, so the rounds of the checkpoint thread left
 *     tens of megabytes unsynced, and the writer's next complete
 *     checkpoint (db.c note 2), store lock held, synced them: 33-61 ms
 *     for 100-200 KiB of its own (traced while a collection ran, rounds
 *     of 70 MB).  So the file knows whether it was written since its
 *     last sync (a truncate counts as a byte written), and
 *     DB_FCNTL_SYNC_DIRTY syncs it only then.
 *  4. A database file that shrinks by much shrinks SHRINK_STEP at a
 *     time, each step synced.  On a file system mounted with discard the
 *     freed blocks are discarded as the journal commits, and one truncate
 *     of 500 MB (a collection's pages given back at once) took 204 ms,
 *     and a writer's fsync meanwhile 86 ms; steps bound what each commit
 *     discards, and so what a flush waits for.
 *  5. For the same reason a connection can ask (DB_FCNTL_SYNC_EVERY)
 *     that the database file be synced after every SYNC_STEP bytes it
 *     writes: the checkpoint thread, whose rounds copy up to 256 MiB,
 *     so that an application's fsync never queues behind a flush of all
 *     of a round (134 ms seen, writing alone after a burst of 1 GiB;
 *     28-34 ms with this).  Every 16 MiB cost 3-5 % of 4 KiB random
 *     writes in flushes; every 32 MiB, nothing measurable.
 *  6. Everything else goes to the default VFS as it is.  The file object
 *     is ours with the default VFS's right after it; its methods are
 *     ours only when the default xOpen set methods (SQLite calls xClose
 *     exactly then, even after a failed open).
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "keep_i.h"

#define VFS_NAME "keepfs"
#define SHRINK_STEP ((sqlite3_int64)16 << 20) /* note 4 */
#define SYNC_STEP ((sqlite3_int64)32 << 20)   /* note 5 */

struct kfile {
	sqlite3_file base;
	sqlite3_file *real; /* the default VFS's, right after this */
	bool keep_size;	    /* note 2 */
	bool main_db;
	bool sync_every;	/* note 5 */
	sqlite3_int64 unsynced; /* bytes written since the last sync (note 3) */
};

static sqlite3_vfs *parent;
static sqlite3_vfs vfs;
static sqlite3_io_methods methods;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool registered;
static _Atomic uint64_t truncates; /* real ones, for the tests */
static _Atomic uint64_t syncs;	   /* the same */

static int k_sync(sqlite3_file *f, int flags);

static sqlite3_file *real(sqlite3_file *f)
{
	return ((struct kfile *)f)->real;
}

static int k_close(sqlite3_file *f)
{
	sqlite3_file *r = real(f);
	int src = r->pMethods->xClose(r);

	f->pMethods = NULL;
	return src;
}

static int k_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	sqlite3_file *r = real(f);
	return r->pMethods->xRead(r, buf, n, off);
}

static int k_write(sqlite3_file *f, const void *buf, int n,
		   sqlite3_int64 off)
{
	struct kfile *k = (struct kfile *)f;
	sqlite3_file *r = k->real;
	int src = r->pMethods->xWrite(r, buf, n, off);

	k->unsynced += n;
	if (src == SQLITE_OK && k->sync_every && k->unsynced >= SYNC_STEP)
		src = k_sync(f, SQLITE_SYNC_NORMAL);
	return src;
}

/* Notes 1, 2 and 4. */
static int k_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct kfile *k = (struct kfile *)f;
	sqlite3_file *r = k->real;
	sqlite3_int64 now;
	int src;

	if (r->pMethods->xFileSize(r, &now) != SQLITE_OK)
		now = -1; /* unknown: truncate as asked */
	if (now == size || (now > size && k->keep_size))
		return SQLITE_OK;
	k->unsynced++;
	while (k->main_db && now - size > SHRINK_STEP) {
		now -= SHRINK_STEP;
		truncates++;
		src = r->pMethods->xTruncate(r, now);
		if (src == SQLITE_OK)
			src = r->pMethods->xSync(r, SQLITE_SYNC_NORMAL);
		if (src != SQLITE_OK)
			return src;
	}
	truncates++;
	return r->pMethods->xTruncate(r, size);
}

static int k_sync(sqlite3_file *f, int flags)
{
	sqlite3_file *r = real(f);

	syncs++;
	int src = r->pMethods->xSync(r, flags);
	if (src == SQLITE_OK)
		((struct kfile *)f)->unsynced = 0;
	return src;
}

static int k_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	sqlite3_file *r = real(f);
	return r->pMethods->xFileSize(r, size);
}

static int k_lock(sqlite3_file *f, int level)
{
	sqlite3_file *r = real(f);
	return r->pMethods->xLock(r, level);
}

static int k_unlock(sqlite3_file *f, int level)
{
	sqlite3_file *r = real(f);
	return r->pMethods->xUnlock(r, level);
}

static int k_check_reserved(sqlite3_file *f, int *out)
{
	sqlite3_file *r = real(f);
	return r->pMethods->xCheckReservedLock(r, out);
}

static int k_file_control(sqlite3_file *f, int op, void *arg)
{
	sqlite3_file *r = real(f);

	if (op == DB_FCNTL_KEEP_SIZE) {
		((struct kfile *)f)->keep_size = *(int *)arg != 0;
		return SQLITE_OK;
	}
	if (op == DB_FCNTL_SYNC_EVERY) {
		((struct kfile *)f)->sync_every = *(int *)arg != 0;
		return SQLITE_OK;
	}
	if (op == DB_FCNTL_SYNC_DIRTY)
		return ((struct kfile *)f)->unsynced
			       ? k_sync(f, SQLITE_SYNC_NORMAL)
			       : SQLITE_OK;
	return r->pMethods->xFileControl(r, op, arg);
}

static int k_sector_size(sqlite3_file *f)
{
	sqlite3_file *r = real(f);
	return r->pMethods->xSectorSize(r);
}

static int k_device(sqlite3_file *f)
{
	sqlite3_file *r = real(f);
	return r->pMethods->xDeviceCharacteristics(r);
}

static int k_shm_map(sqlite3_file *f, int region, int size, int extend,
		     void volatile **out)
{
	sqlite3_file *r = real(f);
	return r->pMethods->xShmMap(r, region, size, extend, out);
}

static int k_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	sqlite3_file *r = real(f);
	return r->pMethods->xShmLock(r, off, n, flags);
}

static void k_shm_barrier(sqlite3_file *f)
{
	sqlite3_file *r = real(f);
	r->pMethods->xShmBarrier(r);
}

static int k_shm_unmap(sqlite3_file *f, int del)
{
	sqlite3_file *r = real(f);
	return r->pMethods->xShmUnmap(r, del);
}

static int k_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
	sqlite3_file *r = real(f);
	return r->pMethods->xFetch(r, off, n, out);
}

static int k_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	sqlite3_file *r = real(f);
	return r->pMethods->xUnfetch(r, off, p);
}

static int k_open(sqlite3_vfs *v, const char *name, sqlite3_file *f,
		  int flags, int *out_flags)
{
	struct kfile *k = (struct kfile *)f;
	(void)v;

	k->real = (sqlite3_file *)(k + 1);
	k->keep_size = false;
	k->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
	k->sync_every = false;
	k->unsynced = 0;
	k->real->pMethods = NULL;
	int src = parent->xOpen(parent, name, k->real, flags, out_flags);
	/* note 6: methods of ours only over methods of the default's */
	if (k->real->pMethods && k->real->pMethods->iVersion < 3) {
		/* older methods lack the shm and fetch calls ours forward */
		k->real->pMethods->xClose(k->real);
		k->real->pMethods = NULL;
		f->pMethods = NULL;
		return SQLITE_CANTOPEN;
	}
	f->pMethods = k->real->pMethods ? &methods : NULL;
	return src;
}

static void setup(void)
{
	parent = sqlite3_vfs_find(NULL);
	if (!parent)
		return;
	methods = (sqlite3_io_methods){
		.iVersion = 3,
		.xClose = k_close,
		.xRead = k_read,
		.xWrite = k_write,
		.xTruncate = k_truncate,
		.xSync = k_sync,
		.xFileSize = k_file_size,
		.xLock = k_lock,
		.xUnlock = k_unlock,
		.xCheckReservedLock = k_check_reserved,
		.xFileControl = k_file_control,
		.xSectorSize = k_sector_size,
		.xDeviceCharacteristics = k_device,
		.xShmMap = k_shm_map,
		.xShmLock = k_shm_lock,
		.xShmBarrier = k_shm_barrier,
		.xShmUnmap = k_shm_unmap,
		.xFetch = k_fetch,
		.xUnfetch = k_unfetch,
	};
	/* the default's own methods for everything but xOpen; they are
	 * handed its vfs fields (mxPathname, pAppData) through this copy */
	vfs = *parent;
	vfs.szOsFile = (int)sizeof(struct kfile) + parent->szOsFile;
	vfs.zName = VFS_NAME;
	vfs.pNext = NULL;
	vfs.xOpen = k_open;
	registered = sqlite3_vfs_register(&vfs, 0) == SQLITE_OK;
}

uint64_t db_vfs_truncates(void)
{
	return truncates;
}

uint64_t db_vfs_syncs(void)
{
	return syncs;
}

const char *db_vfs(void)
{
	pthread_once(&once, setup);
	return registered ? VFS_NAME : NULL;
}
