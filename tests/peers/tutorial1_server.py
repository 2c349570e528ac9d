# tutorial1_server.py: tutorial 1's server.py ("Python and Data Network
# Programming"), final threaded form: bind all interfaces on port 9999,  # port-ok
# listen with backlog 10, accept forever and give every client its own
# thread, which sends a welcome line and answers "OK..." + each chunk it
# receives until the client closes.  Written in Python 3; the only
# deviation is the lines marked "test hook" (TUTORIAL_PORT, PORT line).

import os  # test hook
import socket
import sys
from _thread import start_new_thread

HOST = ''  # Symbolic name meaning all available interfaces
PORT = 9999  # Arbitrary non-privileged port  # port-ok
PORT = int(os.environ.get('TUTORIAL_PORT', PORT))  # test hook

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
print('Socket created')

# Bind socket to local host and port
try:
    s.bind((HOST, PORT))
except socket.error as msg:
    print('Bind failed. Error: ' + str(msg))
    sys.exit(1)

print('Socket bind complete')

# Start listening on socket
s.listen(10)
print('Socket now listening')
if PORT == 0:  # test hook
    print('PORT ' + str(s.getsockname()[1]), flush=True)  # test hook


# Function for handling connections. This will be used to create threads
def clientthread(conn):
    # Sending message to connected client
    conn.send(b'Welcome to the server. Type something and hit enter\n')

    # infinite loop so that function do not terminate and thread do not end.
    while True:

        # Receiving from client
        data = conn.recv(1024)
        reply = b'OK...' + data
        if not data:
            break

        conn.sendall(reply)

    # came out of loop
    conn.close()


# now keep talking with the client
while 1:
    # wait to accept a connection - blocking call
    conn, addr = s.accept()
    print('Connected with ' + addr[0] + ':' + str(addr[1]))

    # start new thread takes 1st argument as a function name to be run,
    # second is the tuple of arguments to the function.
    start_new_thread(clientthread, (conn,))

s.close()
