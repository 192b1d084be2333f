/*
 * th-drain: wait until the console has sent every byte, so that poweroff does
 * not cut the tail of the log (busybox has no tcdrain).  Built static by
 * ci/testhost for the test host's initramfs.
 */
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

int main(void)
{
	int fd = open("/dev/console", O_WRONLY | O_NOCTTY);

	if (fd >= 0) {
		tcdrain(fd);
		close(fd);
	}
	tcdrain(STDOUT_FILENO);
	return 0;
}
